"""The default eps is 1e-3 (Keras's), not PyTorch's 1e-5; eps is otherwise used correctly.

Expected finding under the "pytorch" spec: eps-default.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    # BUG: eps=1e-3 by default
    def __init__(self, num_features, eps=1e-3, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
