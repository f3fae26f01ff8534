"""The running variance is updated with the biased (1/n) batch variance, not the unbiased one.

Expected finding under the "pytorch" spec: running-var-estimator.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _batch_stats(self, xf, axes):
        mean, var, _ = super()._batch_stats(xf, axes)
        return mean, var, xf.var(dim=axes, correction=0)  # BUG: biased
