"""The running statistics are never updated (num_batches_tracked still counts).

Expected finding under the "pytorch" spec: running-stats-not-updated.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _update_running(self, mean, unbiased_var):
        pass  # BUG: the update was commented out while debugging
