"""forward creates eps as a tensor on the default device (the CPU) instead of x.device: correct
on the CPU, a device mismatch on CUDA. Only visible on a GPU (clean on the CPU).

Expected finding under the "pytorch" spec: device-transfer.
"""

from __future__ import annotations

import torch

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _normalize(self, xf, mean, var):
        eps = torch.full((xf.shape[1],), float(self.eps), dtype=xf.dtype)  # BUG: no device=x.device
        return (xf - mean) / torch.sqrt(var + eps.view(mean.shape))
