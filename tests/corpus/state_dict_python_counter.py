"""num_batches_tracked is a python int attribute, so state_dict() misses it and a torch
state_dict has an unexpected key.

Expected finding under the "pytorch" spec: state-dict.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.track_running_stats:
            del self.num_batches_tracked
            self.num_batches_tracked = 0  # BUG: python int, not a buffer

    def _count_batch(self):
        self.num_batches_tracked += 1
