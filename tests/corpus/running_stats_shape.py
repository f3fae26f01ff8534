"""The update assigns (1, C) statistics (keepdim-style): running_mean and running_var change
shape from (C,) to (1, C) after the first training step.

Expected finding under the "pytorch" spec: running-stats-shape.
"""

from __future__ import annotations

import torch

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    @torch.no_grad()
    def _update_running(self, mean, unbiased_var):
        m = self._momentum_weight()
        # BUG: (1, C) batch statistics broadcast the buffers to (1, C)
        self.running_mean = (1 - m) * self.running_mean + m * mean.unsqueeze(0)
        self.running_var = (1 - m) * self.running_var + m * unbiased_var.unsqueeze(0)
