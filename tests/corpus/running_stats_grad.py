"""The running statistics are updated with autograd on (no torch.no_grad, no detach), so the
buffers keep the batch's autograd history.

Expected finding under the "pytorch" spec: running-stats-grad.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    # BUG: the update without its @torch.no_grad(): the buffers join the autograd graph
    _update_running = Reference._update_running.__wrapped__
