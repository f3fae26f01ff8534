"""gamma is initialised uniformly at random in [0, 1) instead of to ones.

Expected finding under the "pytorch" spec: affine-init.
"""

from __future__ import annotations

import torch
from torch import nn

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.affine:
            self.weight = nn.Parameter(torch.rand(self.num_features))  # BUG: not ones
