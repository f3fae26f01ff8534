"""Train/eval is chosen by torch.is_grad_enabled() (d2l style) instead of self.training:
training under no_grad uses running statistics, eval with grad updates them.

Expected finding under the "pytorch" spec: mode-follows-grad.
"""

from __future__ import annotations

import torch

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def forward(self, x):
        # BUG: every `self.training` in the reference's forward reads torch.is_grad_enabled()
        training, self.training = self.training, torch.is_grad_enabled()
        try:
            return super().forward(x)
        finally:
            self.training = training
