"""Affine mistakes outside the common list (missing, swapped, misordered gamma/beta): the
normalization and running statistics are torch's, only the last line is wrong. A careful reader
expects `affine-apply`, and no named cause: the nearest common mistake would be a false one."""

from __future__ import annotations

from torch import nn

STATS_RIGHT = {"running-var-estimator", "momentum-inverted", "momentum-default", "running-stats-not-updated",
               "eval-uses-batch-stats", "reduction-axes", "forward-failed", "input-rank-unsupported",
               "running-stats-shape", "batch-size-constraint", "input-modified", "train-uses-running-stats",
               "norm-variance-estimator", "eps-placement", "eps-default"}


def per_channel(t, y):
    """(C,) broadcast along axis 1 of y, in y's dtype."""
    return t.to(y.dtype).view(1, -1, *([1] * (y.dim() - 2)))


class GammaTwiceBatchNorm(nn.BatchNorm2d):
    """Scales by gamma ** 2 (a gamma applied in two places). Its output is close to a whole
    output scaled, which is no affine defect; the class must not pass affine-apply for it."""

    EXPECTED = {"affine-apply"}
    FALSE = STATS_RIGHT

    def forward(self, x):
        y = super().forward(x)  # gamma * x_hat + beta, with torch's running statistics
        gamma, beta = per_channel(self.weight, y), per_channel(self.bias, y)
        return (y - beta) * gamma + beta


class BiasSubtractedBatchNorm(nn.BatchNorm2d):
    """Subtracts beta (a sign slip). "Only gamma is applied" is the nearest common mistake, and false."""

    EXPECTED = {"affine-apply"}
    FALSE = STATS_RIGHT

    def forward(self, x):
        y = super().forward(x)
        return y - 2 * per_channel(self.bias, y)
