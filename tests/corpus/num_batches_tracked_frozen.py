"""num_batches_tracked is never incremented (momentum=None divides by zero).

Expected finding under the "pytorch" spec: num-batches-tracked.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _count_batch(self):
        pass  # BUG: self.num_batches_tracked.add_(1) forgotten
