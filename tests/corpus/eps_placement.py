"""eps is added outside the square root: (x - mean) / (sqrt(var) + eps).

Expected finding under the "pytorch" spec: eps-placement.
"""

from __future__ import annotations

import torch

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _normalize(self, xf, mean, var):
        return (xf - mean) / (torch.sqrt(var) + self.eps)  # BUG: eps outside the sqrt
