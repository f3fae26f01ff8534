"""The constructor's eps is stored but never used: forward hard-codes 1e-5.

Expected finding under the "pytorch" spec: eps-ignored.
"""

from __future__ import annotations

import torch

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _normalize(self, xf, mean, var):
        return (xf - mean) / torch.sqrt(var + 1e-5)  # BUG: should be self.eps
