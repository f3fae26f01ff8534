"""reset_running_stats() resets running_mean and running_var but forgets num_batches_tracked,
so after a reset the counter (and the momentum=None cumulative average) carries on from
the old count.

Expected finding under the "pytorch" spec: sequence-mismatch.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            # BUG: num_batches_tracked is not reset (torch: self.num_batches_tracked.zero_())
