"""Library-layer patterns: frozen BatchNorm (torchvision/detectron2) and Batch
Renormalization (Ioffe 2017), both deliberately different from BatchNorm in training."""

from __future__ import annotations

import torch
from torch import nn

from tests.wild._util import channel_axes, new_weight, per_channel, refuse_single_value, working


class FrozenBatchNorm2d(nn.Module):
    """Detection backbones' frozen BN: weight, bias and statistics are all buffers, and the
    layer always applies the stored statistics (eps inside rsqrt). Under the pytorch spec the
    true findings are that gamma/beta are not trainable, training uses the running statistics
    and nothing is updated; eps and variance-algorithm claims would be false."""

    EXPECTED = {"affine-params", "train-uses-running-stats", "running-stats-not-updated"}
    FALSE = {"dtype-support", "eps-default", "eps-placement", "eps-ignored", "unstable-variance",
             "momentum-inverted", "momentum-default", "forward-failed", "norm-variance-estimator",
             "input-modified", "batch-size-constraint"}

    def __init__(self, n, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(n))
        self.register_buffer("bias", torch.zeros(n))
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))

    def forward(self, x):
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        shape = per_channel(x)
        return (working(x) * scale.view(shape) + shift.view(shape)).to(x.dtype)


class FrozenBatchNorm2dUnderFrozen(FrozenBatchNorm2d):
    """The same frozen layer judged by the frozen spec (fixed statistics in both modes, buffers
    for gamma/beta, no counter): correct by that convention, so clean."""

    EXPECTED: set[str] = set()
    FALSE = {"affine-params", "train-uses-running-stats", "running-stats-not-updated",
             "batch-size-one", "num-batches-tracked", "forward-failed", "input-rank-unsupported"}
    SPEC = "frozen"


class FrozenBatchNorm2dNoEps(FrozenBatchNorm2dUnderFrozen):
    """The early detection-codebase version: `scale = weight * running_var.rsqrt()`, no eps at
    all (NaN/inf for a zero running_var in a checkpoint). Under the frozen spec the one true
    finding is the missing eps: it adds 0 where the spec adds 1e-5 (eps-default; a reader
    could also file it under eps-placement, but nothing is added anywhere)."""

    EXPECTED = {"eps-default"}
    FALSE = FrozenBatchNorm2dUnderFrozen.FALSE | {"eps-ignored", "unstable-variance", "reduction-axes"}

    def __init__(self, n):
        super().__init__(n, eps=0.0)

    def forward(self, x):
        scale = self.weight * self.running_var.rsqrt()
        shift = self.bias - self.running_mean * scale
        shape = per_channel(x)
        return (working(x) * scale.view(shape) + shift.view(shape)).to(x.dtype)


class LeakyFrozenBatchNorm2d(FrozenBatchNorm2dUnderFrozen):
    """A "frozen" layer that still blends each training batch into its statistics (momentum
    0.1) while normalizing with them: under the frozen spec the statistics must not move, so
    the true finding is the new batch's weight 0.1 where the spec's is 0."""

    EXPECTED = {"momentum-default"}
    FALSE = FrozenBatchNorm2dUnderFrozen.FALSE - {"running-stats-not-updated"} | {"eps-default", "momentum-inverted"}

    def forward(self, x):
        if self.training:
            with torch.no_grad():
                dims = [d for d in range(x.dim()) if d != 1]
                self.running_mean.mul_(0.9).add_(0.1 * x.double().mean(dims).to(self.running_mean.dtype))
                self.running_var.mul_(0.9).add_(0.1 * x.double().var(dims, unbiased=False).to(self.running_var.dtype))
        return super().forward(x)


class BatchRenorm(nn.Module):
    """Batch Renormalization with the paper's final clipping (r_max=3, d_max=5): in training
    x_hat = (x - mu_B)/sigma_B * r + d with r = sigma_B/sigma, d = (mu_B - mu)/sigma (no
    gradient through r, d). Inside the clip that is (x - mu)/sigma: the forward value uses
    the running statistics in training, which is the finding. Running statistics are
    torch's (unbiased variance, momentum 0.1), so momentum/estimator claims are false."""

    EXPECTED = {"train-uses-running-stats"}
    FALSE = {"dtype-support", "momentum-inverted", "momentum-default", "running-var-estimator",
             "eps-default", "unstable-variance", "reduction-axes", "forward-failed",
             "input-modified", "batch-size-constraint"}

    def __init__(self, num_features, eps=1e-5, momentum=0.1, r_max=3.0, d_max=5.0):
        super().__init__()
        self.eps, self.momentum, self.r_max, self.d_max = eps, momentum, r_max, d_max
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        xf, shape = working(x), per_channel(x)
        sigma = torch.sqrt(self.running_var + self.eps)
        if self.training:
            refuse_single_value(x)
            var, mean = torch.var_mean(xf, dim=channel_axes(x), correction=0)
            sigma_b = torch.sqrt(var + self.eps)
            r = (sigma_b.detach() / sigma).clamp(1 / self.r_max, self.r_max)
            d = ((mean.detach() - self.running_mean) / sigma).clamp(-self.d_max, self.d_max)
            x_hat = (xf - mean.view(shape)) / sigma_b.view(shape) * r.view(shape) + d.view(shape)
            n = xf.numel() // xf.shape[1]
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = new_weight(self.momentum, self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))
        else:
            x_hat = (xf - self.running_mean.view(shape)) / sigma.view(shape)
        return (x_hat * self.weight.view(shape) + self.bias.view(shape)).to(x.dtype)
