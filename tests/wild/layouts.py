"""Parameters and statistics kept in broadcast shapes: (C, 1, 1) parameters, (1, C, 1, 1)
buffers with their own names, and the d2l book's plain (1, C, 1, 1) attributes."""

from __future__ import annotations

import torch
from torch import nn

from tests.wild._util import new_weight, refuse_single_value, working

ARITHMETIC = {"affine-apply", "reduction-axes", "momentum-inverted", "momentum-default",
              "eps-default", "eps-placement", "norm-variance-estimator", "forward-failed",
              "input-modified", "batch-size-constraint"}


class ChannelParamBatchNorm2d(nn.Module):
    """gamma/beta stored as (C, 1, 1) Parameters so they broadcast against (N, C, H, W);
    buffers are torch's. Arithmetic is right; a torch checkpoint does not load (weight
    shape (C,) vs (C, 1, 1)): state-dict is the true finding."""

    EXPECTED = {"state-dict"}
    FALSE = ARITHMETIC | {"dtype-support", "affine-params", "running-stats-shape", "running-var-estimator"}

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features, 1, 1))
        self.bias = nn.Parameter(torch.zeros(num_features, 1, 1))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        xf = working(x)
        if self.training:
            refuse_single_value(x)
            var, mean = torch.var_mean(xf, dim=(0, 2, 3), unbiased=False)
            n = xf.numel() // xf.shape[1]
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = new_weight(self.momentum, self.num_batches_tracked)
                self.running_mean.copy_(torch.lerp(self.running_mean.to(mean.dtype), mean, m))
                self.running_var.copy_(torch.lerp(self.running_var.to(var.dtype), var * n / (n - 1), m))
        else:
            mean, var = self.running_mean, self.running_var
        y = (xf - mean[:, None, None]) / (var[:, None, None] + self.eps).sqrt()
        return (y * self.weight + self.bias).to(x.dtype)


class MeansVarsBatchNorm2d(nn.Module):
    """Statistics in (1, C, 1, 1) buffers named `means` and `vars` (keepdim=True
    throughout); everything else as torch. Finding them must work by behaviour and by
    shape, not by name."""

    EXPECTED = {"running-stats-shape"}
    # sequence-mismatch saying "running_mean: implementation None" would be a lookup by name.
    FALSE = ARITHMETIC | {"dtype-support", "running-stats-missing", "running-var-estimator", "sequence-mismatch",
                          "running-stats-not-updated", "eval-uses-batch-stats"}

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("means", torch.zeros(1, num_features, 1, 1))
        self.register_buffer("vars", torch.ones(1, num_features, 1, 1))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        xf = working(x)
        if self.training:
            refuse_single_value(x)
            mean = xf.mean((0, 2, 3), keepdim=True)
            var = xf.var((0, 2, 3), unbiased=False, keepdim=True)
            n = xf.numel() // xf.shape[1]
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = new_weight(self.momentum, self.num_batches_tracked)
                self.means.mul_(1 - m).add_(m * mean)
                self.vars.mul_(1 - m).add_(m * var * n / (n - 1))
        else:
            mean, var = self.means, self.vars
        y = (xf - mean) / torch.sqrt(var + self.eps)
        return (y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)).to(x.dtype)


def _d2l_step(x, gamma, beta, moving_mean, moving_var, eps, momentum):
    """The book's free function: batch statistics when grad is enabled, else the moving
    ones; `momentum` is the weight of the OLD value (0.9), which is PyTorch's 0.1."""
    if not torch.is_grad_enabled():
        return gamma * (x - moving_mean) / torch.sqrt(moving_var + eps) + beta, moving_mean, moving_var
    dims = (0,) if x.dim() == 2 else (0, 2, 3)
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    y = gamma * (x - mean) / torch.sqrt(var + eps) + beta
    moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
    moving_var = momentum * moving_var + (1.0 - momentum) * var
    return y, moving_mean.detach(), moving_var.detach()


class D2lBatchNorm(nn.Module):
    """d2l.ai's chapter layer: num_dims selects (1, C) or (1, C, 1, 1) shapes, the moving
    statistics are plain attributes, the mode follows torch.is_grad_enabled(), the moving
    variance is biased, eps=1e-5 and momentum=0.9 (old weight) are fixed."""

    EXPECTED = {"input-rank-unsupported", "running-stats-not-buffers", "running-stats-shape",
                "mode-follows-grad", "running-var-estimator"}
    FALSE = {"momentum-inverted", "momentum-default", "affine-apply", "eps-default",
             "eps-placement", "reduction-axes", "input-modified"}

    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.moving_mean = torch.zeros(shape)
        self.moving_var = torch.ones(shape)

    def forward(self, x):
        if self.moving_mean.device != x.device:
            self.moving_mean = self.moving_mean.to(x.device)
            self.moving_var = self.moving_var.to(x.device)
        y, self.moving_mean, self.moving_var = _d2l_step(
            x, self.gamma, self.beta, self.moving_mean, self.moving_var, eps=1e-5, momentum=0.9)
        return y
