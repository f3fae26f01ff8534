"""Eval mode updates the running statistics with the batch's (output still uses the old ones).

Expected finding under the "pytorch" spec: eval-updates-running-stats.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _stats_for(self, xf, axes, shape):
        mean, var = super()._stats_for(xf, axes, shape)
        if not self._uses_batch_stats():
            mean, var = mean.clone(), var.clone()
            self._update_running(xf.mean(dim=axes), xf.var(dim=axes, correction=1))  # BUG
        return mean, var
