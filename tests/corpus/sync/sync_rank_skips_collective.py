"""A rank whose shard holds a single sample skips the all-reduce (uses its local statistics):
its peers wait in the collective until it times out.

Expected under the "pytorch" spec with --world-size N: sync-rank-failed.
"""

from tests.corpus.reference import BatchNorm as Reference
from tests.corpus.sync.syncbn import SyncBatchNorm as Correct


class SyncBatchNorm(Correct):
    def _check_batch_size(self, xf):
        if xf.shape[0] == 1:  # BUG: a single-sample shard leaves the collectives out
            return Reference._check_batch_size(self, xf)
        return super()._check_batch_size(xf)

    def _batch_stats(self, xf, axes):
        if xf.shape[0] == 1:  # BUG: a single-sample shard leaves the collectives out
            return Reference._batch_stats(self, xf, axes)
        return super()._batch_stats(xf, axes)
