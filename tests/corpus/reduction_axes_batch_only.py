"""Training normalizes with per-position statistics over N only (one mean per (c, h, w)),
not over N and the spatial axes; running statistics are still per channel and right.

Expected finding under the "pytorch" spec: reduction-axes.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _stats_for(self, xf, axes, shape):
        mean, var = super()._stats_for(xf, axes, shape)  # running statistics stay right
        if self._uses_batch_stats():
            # BUG: statistics over the batch axis only, per spatial position
            mean = xf.mean(dim=0, keepdim=True)
            var = xf.var(dim=0, correction=0, keepdim=True)
        return mean, var
