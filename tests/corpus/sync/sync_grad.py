"""Reduces the statistics with dist.all_reduce on detached tensors: outputs are right, gradients miss the statistics.

Expected under the "pytorch" spec with --world-size N: sync-grad.
"""

import torch.distributed as dist

from tests.corpus.sync.syncbn import SyncBatchNorm as Correct


class SyncBatchNorm(Correct):
    def _reduce(self, tensor):
        out = tensor.detach().clone()  # BUG: not differentiable; autograd sees a constant
        dist.all_reduce(out, group=self.process_group)
        return out
