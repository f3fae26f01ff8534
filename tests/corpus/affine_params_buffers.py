"""gamma and beta are registered as buffers, not Parameters: optimizers never train them.

Expected finding under the "pytorch" spec: affine-params.
"""

from __future__ import annotations

import torch

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.affine:
            del self.weight, self.bias
            # BUG: buffers, not nn.Parameter
            self.register_buffer("weight", torch.ones(self.num_features))
            self.register_buffer("bias", torch.zeros(self.num_features))
            for name in ("running_mean", "running_var", "num_batches_tracked"):  # after them, as in torch
                self.register_buffer(name, self._buffers.pop(name))
