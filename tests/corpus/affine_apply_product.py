"""The affine transform multiplies by beta instead of adding it: x_hat * gamma * beta.

Expected finding under the "pytorch" spec: affine-apply.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _apply_affine(self, x_hat, shape):
        return x_hat * self.weight.view(shape) * self.bias.view(shape)  # BUG
