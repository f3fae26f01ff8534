"""Eval mode normalizes with the batch statistics instead of the running statistics.

Expected finding under the "pytorch" spec: eval-uses-batch-stats.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _uses_batch_stats(self):
        return True  # BUG: was `self.training or self.running_mean is None`
