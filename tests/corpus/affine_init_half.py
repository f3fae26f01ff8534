"""gamma is initialised to 0.5 instead of 1.

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
            self.weight = nn.Parameter(torch.full((self.num_features,), 0.5))  # BUG
