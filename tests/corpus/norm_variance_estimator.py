"""Training normalizes with the unbiased (n - 1) batch variance instead of the biased one.

Expected finding under the "pytorch" spec: norm-variance-estimator.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _batch_stats(self, xf, axes):
        mean, _, unbiased_var = super()._batch_stats(xf, axes)
        return mean, xf.var(dim=axes, correction=1, keepdim=True), unbiased_var  # BUG: unbiased
