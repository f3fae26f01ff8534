"""Correct from-scratch BatchNorm with Keras 3 BatchNormalization semantics (no bug).

Channels-last inputs (N, ..., C); momentum 0.99 weights the OLD moving statistic
(moving <- momentum * moving + (1 - momentum) * batch); biased variance for both the
normalization and the moving variance; epsilon 1e-3 inside the square root; gamma/beta;
a batch with one value per channel is allowed. Expected under the "keras" spec: no finding.
"""

from __future__ import annotations

import torch
from torch import nn


class BatchNorm(nn.Module):
    """Normalizes over all axes but the last (channel) axis of (N,C) ... (N,D,H,W,C)."""

    def __init__(self, num_features, eps=1e-3, momentum=0.99, affine=True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        if affine:
            self.gamma = nn.Parameter(torch.ones(num_features))
            self.beta = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("gamma", None)
            self.register_parameter("beta", None)
        self.register_buffer("moving_mean", torch.zeros(num_features))
        self.register_buffer("moving_variance", torch.ones(num_features))

    def forward(self, x):
        if x.dim() not in (2, 3, 4, 5):
            raise ValueError(f"expected 2D to 5D input (got {x.dim()}D input)")
        axes = list(range(x.dim() - 1))
        # Half inputs accumulate statistics in float32, as Keras does.
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        if self.training:
            mean = xf.mean(dim=axes)
            var = xf.var(dim=axes, correction=0)
            self._update_moving(mean, var)
        else:
            mean, var = self.moving_mean, self.moving_variance
        x_hat = (xf - mean) / torch.sqrt(var + self.eps)
        if self.affine:
            x_hat = x_hat * self.gamma + self.beta
        return x_hat.to(x.dtype)

    @torch.no_grad()
    def _update_moving(self, mean, var):
        m = self.momentum
        self.moving_mean.mul_(m).add_((1 - m) * mean)
        self.moving_variance.mul_(m).add_((1 - m) * var)
