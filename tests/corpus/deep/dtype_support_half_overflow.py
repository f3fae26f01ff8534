"""Statistics are computed in the input's dtype (no float32 accumulation for half inputs), with
the squares written out: a float16 input with a standard deviation of a few hundred overflows
((x - mean)^2 > 65504), so the variance is inf and the output collapses to beta.

Expected finding under the "pytorch" spec: dtype-support.
"""

from __future__ import annotations

import torch
from torch import nn


class BatchNorm(nn.Module):
    """Normalizes over all axes but channel axis 1 of (N,C), (N,C,L), (N,C,H,W), (N,C,D,H,W)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x):
        if x.dim() not in (2, 3, 4, 5):
            raise ValueError(f"expected 2D to 5D input (got {x.dim()}D input)")
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
        axes = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        # Half inputs accumulate statistics in float32, as torch does.
        xf = x  # BUG: no float32 accumulation for float16/bfloat16 inputs
        if self.training or self.running_mean is None:
            if x.numel() // x.shape[1] == 1:
                raise ValueError("Expected more than 1 value per channel when training")
            mean = xf.mean(dim=axes, keepdim=True)
            var = ((xf - mean) ** 2).mean(dim=axes, keepdim=True)
            if self.training and self.track_running_stats:
                self._update(mean.flatten(), xf.var(dim=axes, correction=1))
        else:
            mean, var = self.running_mean.view(shape), self.running_var.view(shape)
        x_hat = (xf - mean) / torch.sqrt(var + self.eps)
        if self.affine:
            x_hat = x_hat * self.weight.view(shape) + self.bias.view(shape)
        return x_hat.to(x.dtype)

    @torch.no_grad()
    def _update(self, mean, unbiased_var):
        if self.momentum is None:  # cumulative average over all batches seen
            m = 1.0 / float(self.num_batches_tracked)
        else:
            m = self.momentum
        self.running_mean.mul_(1 - m).add_(m * mean)
        self.running_var.mul_(1 - m).add_(m * unbiased_var)
