"""gamma and beta are plain tensors with requires_grad, not Parameters: parameters(),
state_dict() and .to() do not see them.

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
            # BUG: plain tensors, not nn.Parameter
            self.weight = torch.ones(self.num_features, requires_grad=True)
            self.bias = torch.zeros(self.num_features, requires_grad=True)
