"""The variance is computed in one pass as E[x^2] - E[x]^2 in the working dtype, which
cancels catastrophically for large means with small spread (normalization and running var).

Expected finding under the "pytorch" spec: unstable-variance.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _batch_stats(self, xf, axes):
        mean = xf.mean(dim=axes, keepdim=True)
        var = (xf * xf).mean(dim=axes, keepdim=True) - mean * mean  # BUG: one-pass
        n = xf.numel() // xf.shape[1]
        return mean, var, var.flatten() * n / (n - 1)
