"""Only rank 0 updates the running statistics (and counts the batch); the other ranks keep their initial ones.

Expected under the "pytorch" spec with --world-size N: sync-running-stats-diverge.
"""

import torch.distributed as dist

from tests.corpus.sync.syncbn import SyncBatchNorm as Correct


class SyncBatchNorm(Correct):
    def _count_batch(self):
        if not self._synced() or dist.get_rank() == 0:  # BUG: rank 0 only
            super()._count_batch()

    def _update_running(self, mean, unbiased_var):
        if not self._synced() or dist.get_rank() == 0:  # BUG: rank 0 only
            super()._update_running(mean, unbiased_var)
