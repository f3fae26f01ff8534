"""A Flax linen BatchNorm ported by hand: features last, Flax's `use_running_average`
mapped to `not self.training`. Fast variance E[x^2] - E[x]^2 (Flax's default),
momentum 0.99 as the OLD value's weight, eps 1e-5, statistics named `mean`/`var`, params
`scale`/`bias`. Correct under the flax spec: clean, including no unstable-variance claim
(the flax spec expects the fast variance)."""

from __future__ import annotations

import torch
from torch import nn


class FlaxBatchNorm(nn.Module):
    EXPECTED: set[str] = set()
    FALSE = {"unstable-variance", "momentum-inverted", "running-var-estimator",
             "running-stats-missing", "forward-failed", "input-rank-unsupported"}
    SPEC = "flax"

    def __init__(self, features, momentum=0.99, epsilon=1e-5):
        super().__init__()
        self.momentum, self.epsilon = momentum, epsilon
        self.scale = nn.Parameter(torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("var", torch.ones(features))

    def forward(self, x):
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        if not self.training:  # use_running_average=True
            mean, var = self.mean, self.var
        else:
            axes = tuple(range(xf.dim() - 1))
            mean = xf.mean(axes)
            var = (xf * xf).mean(axes) - mean * mean  # use_fast_variance
            with torch.no_grad():
                self.mean.copy_(self.momentum * self.mean + (1 - self.momentum) * mean)
                self.var.copy_(self.momentum * self.var + (1 - self.momentum) * var)
        y = (xf - mean) * torch.rsqrt(var + self.epsilon)
        return (y * self.scale + self.bias).to(x.dtype)


class FlaxDefaultInTorchFormula(nn.Module):
    """A port that moved to channels-first and PyTorch's update formula (momentum weighs the new
    batch) but kept Flax's default 0.99: the running statistics follow the last batch. Passing
    momentum works as in PyTorch, so the formula is not inverted; the default is wrong."""

    EXPECTED = {"momentum-default"}
    FALSE = {"momentum-inverted", "momentum-ignored", "running-var-estimator", "reduction-axes",
             "forward-failed", "input-rank-unsupported"}

    def __init__(self, num_features, momentum=0.99, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        if self.training:
            axes = [0, *range(2, x.dim())]
            mean, var = x.mean(axes), x.var(axes, unbiased=False)
            n = x.numel() // x.shape[1]
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * (n / max(n - 1, 1)))
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape)
