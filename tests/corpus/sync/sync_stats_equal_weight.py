"""Averages the ranks' means and variances with equal weights, whatever their shard sizes.

Expected under the "pytorch" spec with --world-size N: sync-stats-local-count.
"""

import torch.distributed as dist

from tests.corpus.sync.syncbn import SyncBatchNorm as Correct


class SyncBatchNorm(Correct):
    def _batch_stats(self, xf, axes):
        if not self._synced():
            return super()._batch_stats(xf, axes)
        world = dist.get_world_size(self.process_group)
        mean = self._reduce(xf.mean(dim=axes, keepdim=True)) / world  # BUG: ranks weighted equally
        var = self._reduce(((xf - mean) ** 2).mean(dim=axes, keepdim=True)) / world
        n = self._reduce(self._local_count(xf))
        return mean, var, (var * n / (n - 1)).flatten()
