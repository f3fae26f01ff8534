"""Correct SyncBatchNorm for the CPU (gloo) and the GPU: statistics of the global batch (no bug).

Every rank all-reduces the per-channel count, sum, and sum of squared deviations from the
global mean, through a differentiable all-reduce, so gradients flow through the global
statistics exactly as in one BatchNorm over the whole batch. Without an initialized process
group (or in eval mode) it is the corpus reference BatchNorm. The broken variants in this
folder subclass it and override one step.
Expected under the "pytorch" spec: no finding, with --world-size N or without.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from tests.corpus.reference import BatchNorm as Reference


class AllReduceSum(torch.autograd.Function):
    """Sum over ranks; its gradient is the sum of the ranks' gradients (also all-reduced)."""

    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        out = tensor.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class SyncBatchNorm(Reference):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def _synced(self):
        return self.training and dist.is_available() and dist.is_initialized()

    def _reduce(self, tensor):
        return AllReduceSum.apply(tensor, self.process_group)

    def _check_batch_size(self, xf):
        if not self._synced():
            return super()._check_batch_size(xf)
        # One value per channel on this rank is fine: only the global batch must have more.
        count = self._reduce(torch.tensor(float(xf.numel() // xf.shape[1]), dtype=xf.dtype, device=xf.device))
        if count <= 1:
            raise ValueError("Expected more than 1 value per channel when training")

    def _batch_stats(self, xf, axes):
        if not self._synced():
            return super()._batch_stats(xf, axes)
        count = self._local_count(xf)
        total = self._reduce(count)
        mean = self._reduce(xf.sum(dim=axes, keepdim=True)) / self._mean_divisor(total)
        var = self._reduce(((xf - mean) ** 2).sum(dim=axes, keepdim=True)) / total
        n = self._unbiased_count(total, count)
        return mean, var, (var * n / (n - 1)).flatten()

    # -- the steps the broken variants override -------------------------------------------

    def _local_count(self, xf):
        return torch.tensor(float(xf.numel() // xf.shape[1]), dtype=xf.dtype, device=xf.device)

    def _mean_divisor(self, total):
        return total

    def _unbiased_count(self, total, local):
        return total
