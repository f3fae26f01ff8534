"""Takes a process_group but never reduces over it: each rank normalizes with its own shard's statistics.

Expected under the "pytorch" spec with --world-size N: sync-not-synchronized.
"""

from tests.corpus.sync.syncbn import SyncBatchNorm as Correct


class SyncBatchNorm(Correct):
    def _reduce(self, tensor):
        return tensor  # BUG: no all-reduce; local statistics only
