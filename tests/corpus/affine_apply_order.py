"""The affine transform adds beta before scaling: (x_hat + beta) * gamma.

Expected finding under the "pytorch" spec: affine-apply.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _apply_affine(self, x_hat, shape):
        return (x_hat + self.bias.view(shape)) * self.weight.view(shape)  # BUG
