"""num_batches_tracked is incremented twice per training step (in forward and in _update).

Expected finding under the "pytorch" spec: num-batches-tracked.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _update_running(self, mean, unbiased_var):
        super()._update_running(mean, unbiased_var)
        self.num_batches_tracked.add_(1)  # BUG: already counted in forward
