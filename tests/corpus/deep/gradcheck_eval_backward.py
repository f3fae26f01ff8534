"""Eval mode runs a hand-written autograd.Function whose backward returns sum(grad) as the
weight gradient instead of sum(grad * x_hat). Outputs are right and training gradients come
from autograd, so only gradcheck in eval mode sees it.

Expected finding under the "pytorch" spec: gradcheck.
"""

from __future__ import annotations

import torch

from tests.corpus.reference import BatchNorm as Reference


class _EvalNorm(torch.autograd.Function):
    """gamma * (x - mean) / sqrt(var + eps) + beta with fixed statistics."""

    @staticmethod
    def forward(ctx, x, mean, var, weight, bias, eps):
        inv = torch.rsqrt(var + eps)
        x_hat = (x - mean) * inv
        ctx.save_for_backward(x_hat, inv, weight)
        return x_hat * weight + bias

    @staticmethod
    def backward(ctx, grad):
        x_hat, inv, weight = ctx.saved_tensors
        axes = [0, *range(2, grad.dim())]
        grad_weight = grad.sum(dim=axes, keepdim=True)  # BUG: should be (grad * x_hat).sum(...)
        grad_bias = grad.sum(dim=axes, keepdim=True)
        return grad * weight * inv, None, None, grad_weight, grad_bias, None


class BatchNorm(Reference):
    def forward(self, x):
        if self._uses_batch_stats() or not self.affine:
            return super().forward(x)
        self._check_input(x)  # eval with running statistics and affine: the fused Function
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = _EvalNorm.apply(self._working_input(x), self.running_mean.view(shape), self.running_var.view(shape),
                            self.weight.view(shape), self.bias.view(shape), self.eps)
        return y.to(x.dtype)
