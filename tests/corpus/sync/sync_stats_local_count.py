"""The unbiased running variance is corrected with the rank's own count: var * n_rank / (n_rank - 1).

Expected under the "pytorch" spec with --world-size N: sync-stats-local-count.
"""

from tests.corpus.sync.syncbn import SyncBatchNorm as Correct


class SyncBatchNorm(Correct):
    def _unbiased_count(self, total, local):
        return local  # BUG: the local count, not the global one
