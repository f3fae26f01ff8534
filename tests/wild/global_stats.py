"""One scalar mean and variance for the whole tensor: every channel shares them."""

from __future__ import annotations

import torch
from torch import nn

from tests.wild._util import new_weight, per_channel, working


class GlobalBatchNorm(nn.Module):
    """A 'whitening' layer written as BatchNorm: one mean/var over all of x, scalar running
    buffers, torch's momentum (0.1, new weight), eps and unbiased running variance. The
    per-channel model fails here, so momentum/eps numbers solved under it are meaningless."""

    EXPECTED = {"reduction-axes", "running-stats-shape"}
    FALSE = {"dtype-support", "momentum-default", "momentum-inverted", "eps-default", "eps-placement",
             "running-var-estimator", "forward-failed", "input-rank-unsupported",
             "batch-size-constraint", "input-modified", "running-stats-missing",
             "unstable-variance"}

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(()))
        self.register_buffer("running_var", torch.ones(()))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        xf = working(x)
        if self.training:
            if xf.numel() < 2:
                raise ValueError("Expected more than 1 value when training")
            mean, var = xf.mean(), xf.var(unbiased=False)
            n = xf.numel()
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = new_weight(self.momentum, self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))
        else:
            mean, var = self.running_mean, self.running_var
        shape = per_channel(x)
        y = (xf - mean) / torch.sqrt(var + self.eps)
        return (y * self.weight.view(shape) + self.bias.view(shape)).to(x.dtype)
