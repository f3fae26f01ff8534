"""No running statistics at all (track_running_stats is ignored); eval uses batch statistics.

Expected finding under the "pytorch" spec: running-stats-missing.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        # BUG: running statistics are never kept
        super().__init__(num_features, eps, momentum, affine, track_running_stats=False)
