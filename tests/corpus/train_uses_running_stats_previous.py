"""Training normalizes with the running statistics as they were before this step's update,
instead of with the batch statistics.

Expected finding under the "pytorch" spec: train-uses-running-stats.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _stats_for(self, xf, axes, shape):
        if not (self.training and self.track_running_stats):
            return super()._stats_for(xf, axes, shape)
        old_mean, old_var = self.running_mean.clone(), self.running_var.clone()
        super()._stats_for(xf, axes, shape)  # updates the running statistics
        return old_mean.view(shape), old_var.view(shape)  # BUG
