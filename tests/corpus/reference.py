"""Correct from-scratch BatchNorm with torch.nn.BatchNorm1d/2d/3d semantics (no bug).

The baseline of the corpus: every other module here subclasses this one and overrides the
one step (a constructor default, a hook method, a structural detail) that holds its bug.
Each step of forward is a small method so that a bug can replace exactly that step.
Expected under the "pytorch" spec: no finding.
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
        self._check_input(x)
        if self.training and self.track_running_stats:
            self._count_batch()
        axes = [0, *range(2, x.dim())]  # every axis but the channel axis
        shape = [1, -1] + [1] * (x.dim() - 2)  # a (C,) vector viewed to broadcast against x
        xf = self._working_input(x)
        mean, var = self._stats_for(xf, axes, shape)
        x_hat = self._normalize(xf, mean, var)
        if self.affine:
            x_hat = self._apply_affine(x_hat, shape)
        return x_hat.to(x.dtype)

    # -- the steps of forward ---------------------------------------------------------------

    def _check_input(self, x):
        if x.dim() not in (2, 3, 4, 5):
            raise ValueError(f"expected 2D to 5D input (got {x.dim()}D input)")

    def _count_batch(self):
        self.num_batches_tracked.add_(1)

    def _working_input(self, x):
        # Half inputs accumulate statistics in float32, as torch does.
        return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x

    def _uses_batch_stats(self):
        return self.training or self.running_mean is None

    def _stats_for(self, xf, axes, shape):
        """(mean, var) to normalize with: the batch's in training or without running
        statistics (updating the running statistics in training), else the running ones."""
        if not self._uses_batch_stats():
            return self.running_mean.view(shape), self.running_var.view(shape)
        self._check_batch_size(xf)
        mean, var, unbiased_var = self._batch_stats(xf, axes)
        if self.training and self.track_running_stats:
            self._update_running(mean.flatten(), unbiased_var)
        return mean, var

    def _check_batch_size(self, xf):
        if xf.numel() // xf.shape[1] == 1:
            raise ValueError("Expected more than 1 value per channel when training")

    def _batch_stats(self, xf, axes):
        """Mean and biased variance to normalize with (keepdim), and the unbiased variance
        (shape (C,)) for the running variance."""
        mean = xf.mean(dim=axes, keepdim=True)
        var = xf.var(dim=axes, correction=0, keepdim=True)
        return mean, var, xf.var(dim=axes, correction=1)

    def _normalize(self, xf, mean, var):
        return (xf - mean) / torch.sqrt(var + self.eps)

    def _apply_affine(self, x_hat, shape):
        return x_hat * self.weight.view(shape) + self.bias.view(shape)

    @torch.no_grad()
    def _update_running(self, mean, unbiased_var):
        m = self._momentum_weight()
        self.running_mean.mul_(1 - m).add_(m * mean)
        self.running_var.mul_(1 - m).add_(m * unbiased_var)

    def _momentum_weight(self):
        """The new batch's weight in the running averages."""
        if self.momentum is None:  # cumulative average over all batches seen
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum
