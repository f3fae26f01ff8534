"""The default momentum is 0.01; the update formula is correct.

Expected finding under the "pytorch" spec: momentum-default.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    # BUG: momentum=0.01 by default
    def __init__(self, num_features, eps=1e-5, momentum=0.01, affine=True, track_running_stats=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
