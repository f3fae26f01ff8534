"""Batch-size constraints: ghost / virtual-batch BatchNorm and layers that reshape N."""

from __future__ import annotations

import functools

import torch
from torch import nn

from tests.wild._util import new_weight, per_channel, working

CONSTRAINT_FALSE = {"forward-failed", "input-rank-unsupported", "affine-apply",
                    "running-stats-shape", "momentum-inverted", "running-var-estimator",
                    "input-modified"}


class PairedBatchNorm(nn.Module):
    """Folds the batch into pairs, x.view(N // 2, 2, C, ...), to reduce over both batch axes
    (a pattern from ghost-BN code); an odd batch raises. Otherwise exactly torch's BatchNorm
    at every rank: the only finding is the constraint."""

    EXPECTED = {"batch-size-constraint"}
    FALSE = CONSTRAINT_FALSE | {"reduction-axes", "output-mismatch", "sequence-mismatch"}

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        xf, shape = working(x), per_channel(x)
        if self.training:
            if x.shape[0] % 2:
                raise ValueError(f"batch size must be even, got {x.shape[0]}")
            pairs = xf.reshape(x.shape[0] // 2, 2, *x.shape[1:])
            axes = [0, 1, *range(3, pairs.dim())]
            var, mean = torch.var_mean(pairs, dim=axes, correction=0)
            n = xf.numel() // xf.shape[1]
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = new_weight(self.momentum, self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * self._running_var_sample(var, n))
        else:
            mean, var = self.running_mean, self.running_var
        y = (xf - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return (y * self.weight.view(shape) + self.bias.view(shape)).to(x.dtype)


    def _running_var_sample(self, var, n):
        return var * n / (n - 1)


class PairedBiasedBatchNorm(PairedBatchNorm):
    """The same pairing layer with a second bug: running_var follows the biased variance.
    A batch constraint must not hide other findings."""

    EXPECTED = {"batch-size-constraint", "running-var-estimator"}
    FALSE = CONSTRAINT_FALSE - {"running-var-estimator"} | {"reduction-axes", "dtype-support"}

    def _running_var_sample(self, var, n):
        return var


class GhostBatchNorm(nn.Module):
    """Ghost BN (Hoffer et al.): the batch is split into virtual batches of 2, each
    normalized by its own statistics through an inner BatchNorm1d; an odd batch raises.
    Besides the constraint, its statistics are those of sub-batches, not of the batch, and
    the running statistics move once per virtual batch: a different layer by design."""

    EXPECTED = {"batch-size-constraint"}
    # dtype-support stays free: statistics of 2-sample virtual batches of bfloat16 inputs with
    # mean 1000 really do break where torch's full-batch statistics do not (seeds 1 and 2).
    FALSE = {"forward-failed", "input-rank-unsupported", "running-stats-shape", "input-modified"}

    def __init__(self, num_features, virtual_batch_size=2, eps=1e-5, momentum=0.1):
        super().__init__()
        self.virtual_batch_size = virtual_batch_size
        self.bn = nn.BatchNorm1d(num_features, eps=eps, momentum=momentum)

    def forward(self, x):
        if not self.training:
            return self.bn(x)
        if x.shape[0] % self.virtual_batch_size:
            raise ValueError(f"batch {x.shape[0]} is not a multiple of {self.virtual_batch_size}")
        return torch.cat([self.bn(chunk) for chunk in x.split(self.virtual_batch_size)])




GhostBatchNorm3 = functools.partial(GhostBatchNorm, virtual_batch_size=3)
GhostBatchNorm3.EXPECTED = {"batch-size-constraint"}  # type: ignore[attr-defined]
GhostBatchNorm3.FALSE = GhostBatchNorm.FALSE  # type: ignore[attr-defined]


class MinBatchBatchNorm(PairedBatchNorm):
    """'BatchNorm is meaningless on tiny batches': refuses N < 4 in training, otherwise torch's
    BatchNorm (it reuses the pairing arithmetic only for even N; odd N >= 5 works too)."""

    EXPECTED = {"batch-size-constraint"}
    FALSE = CONSTRAINT_FALSE | {"reduction-axes", "output-mismatch", "sequence-mismatch", "dtype-support"}

    def forward(self, x):
        if self.training and x.shape[0] < 4:
            raise ValueError(f"batch of {x.shape[0]} is too small for batch statistics (need >= 4)")
        if self.training and x.shape[0] % 2:
            return self._odd(x)
        return super().forward(x)

    def _odd(self, x):
        # Same arithmetic without the pairing.
        xf, shape = working(x), per_channel(x)
        var, mean = torch.var_mean(xf, dim=[0, *range(2, x.dim())], correction=0)
        n = xf.numel() // xf.shape[1]
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = new_weight(self.momentum, self.num_batches_tracked)
            self.running_mean.mul_(1 - m).add_(m * mean)
            self.running_var.mul_(1 - m).add_(m * self._running_var_sample(var, n))
        y = (xf - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return (y * self.weight.view(shape) + self.bias.view(shape)).to(x.dtype)
