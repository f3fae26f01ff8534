"""Training updates the running statistics, then normalizes with the updated running
statistics instead of with the batch statistics.

Expected finding under the "pytorch" spec: train-uses-running-stats.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _stats_for(self, xf, axes, shape):
        mean, var = super()._stats_for(xf, axes, shape)  # updates the running statistics
        if self.training and self.track_running_stats:
            mean, var = self.running_mean.view(shape), self.running_var.view(shape)  # BUG
        return mean, var
