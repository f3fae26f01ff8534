"""Keras-convention BatchNorm (channels last) whose update uses PyTorch's formula:
moving = (1 - m) * moving + m * batch with m = 0.99. Checked against the "keras" spec.

Expected finding under the "keras" spec: momentum-inverted.
"""

from __future__ import annotations

import torch

from tests.corpus.keras_reference import BatchNorm as Reference


class BatchNorm(Reference):
    @torch.no_grad()
    def _update_moving(self, mean, var):
        m = self.momentum
        # BUG: momentum weights the new batch (PyTorch convention)
        self.moving_mean.mul_(1 - m).add_(m * mean)
        self.moving_variance.mul_(1 - m).add_(m * var)
