"""The update formula is flipped: running = m * running + (1 - m) * batch, with m = 0.1.

Expected finding under the "pytorch" spec: momentum-inverted.
"""

from __future__ import annotations

import torch

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    @torch.no_grad()
    def _update_running(self, mean, unbiased_var):
        m = self._momentum_weight()
        # BUG: momentum weights the old value (Keras convention)
        self.running_mean.mul_(m).add_((1 - m) * mean)
        self.running_var.mul_(m).add_((1 - m) * unbiased_var)
