"""Memory-layout habits: computing channels-last internally (correct), and `.view` on the
input (raises on non-contiguous inputs, e.g. after a transpose)."""

from __future__ import annotations

import torch
from torch import nn

from tests.wild._util import new_weight, working


class _Stats(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def rows(self, x):
        """(C, everything else)."""
        raise NotImplementedError

    def forward(self, x):
        rows = self.rows(working(x))
        if self.training:
            if rows.shape[1] < 2:
                raise ValueError("Expected more than 1 value per channel when training")
            var, mean = torch.var_mean(rows, dim=1, correction=0)
            k = rows.shape[1]
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = new_weight(self.momentum, self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * k / (k - 1))
        else:
            mean, var = self.running_mean, self.running_var
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = (working(x) - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return (y * self.weight.view(shape) + self.bias.view(shape)).to(x.dtype)


class PermuteBatchNorm(_Stats):
    """Moves channels last and flattens (movedim + reshape): correct for any layout."""

    EXPECTED: set[str] = set()
    FALSE = {"non-contiguous", "memory-format", "forward-failed", "input-rank-unsupported",
             "reduction-axes", "affine-apply"}

    def rows(self, x):
        return x.movedim(1, -1).reshape(-1, x.shape[1]).t()


class ViewBatchNorm(_Stats):
    """`x.transpose(0, 1).contiguous()` forgotten: `x.view(C, -1)` after a transpose raises on
    non-contiguous input (and would mix samples and channels if it did not)."""

    EXPECTED = {"non-contiguous"}
    FALSE = {"forward-failed", "input-rank-unsupported", "reduction-axes", "affine-apply",
             "momentum-inverted", "running-var-estimator"}

    def rows(self, x):
        n, c = x.shape[:2]
        return x.view(n, c, -1).transpose(0, 1).reshape(c, -1)
