"""PyTorch's update formula with a Keras-style default momentum of 0.9 (the old value's
weight in Keras), so the new batch gets weight 0.9 instead of 0.1.

Expected finding under the "pytorch" spec: momentum-inverted.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    # BUG: momentum=0.9 by default
    def __init__(self, num_features, eps=1e-5, momentum=0.9, affine=True, track_running_stats=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
