"""The constructor's momentum is stored but never used: the update hard-codes 0.1.

Expected finding under the "pytorch" spec: momentum-ignored.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _momentum_weight(self):
        return 0.1  # BUG: self.momentum is never read (and None is not supported)
