"""eps is kept as a per-channel tensor in a plain attribute: .to()/.double()/.half() do not
move it, so on CUDA forward mixes devices (and after .half() it stays float32).

Expected finding under the "pytorch" spec: device-transfer.
"""

from __future__ import annotations

import torch

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.eps_t = torch.full((self.num_features,), float(self.eps))  # BUG: plain attribute, not a buffer

    def _normalize(self, xf, mean, var):
        return (xf - mean) / torch.sqrt(var + self.eps_t.view(mean.shape))
