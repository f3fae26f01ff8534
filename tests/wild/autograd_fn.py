"""Hand-written backward passes (torch.autograd.Function), as in 'understanding the gradient
flow through BatchNorm' posts: one right, one that treats the batch statistics as constants."""

from __future__ import annotations

import torch
from torch import nn

from tests.wild._util import channel_axes, new_weight, per_channel, refuse_single_value, working


class _BatchNormFn(torch.autograd.Function):
    """y = weight * (x - mean) * invstd + bias with batch statistics; analytic backward."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        xf, shape, axes = working(x), per_channel(x), channel_axes(x)
        var, mean = torch.var_mean(xf, dim=axes, correction=0, keepdim=True)
        invstd = torch.rsqrt(var + eps)
        x_hat = (xf - mean) * invstd
        ctx.save_for_backward(x_hat, invstd, weight)
        ctx.meta = (x.dtype, shape, axes)
        y = x_hat * weight.view(shape) + bias.view(shape)
        return y.to(x.dtype), mean.flatten(), var.flatten()

    @staticmethod
    def backward(ctx, grad_y, _grad_mean, _grad_var):
        return grads(ctx, grad_y, exact_input_grad)


def grads(ctx, grad_y, input_grad):
    x_hat, invstd, weight = ctx.saved_tensors
    dtype, shape, axes = ctx.meta
    g = grad_y.to(x_hat.dtype)
    grad_weight = (g * x_hat).sum(axes)
    grad_bias = g.sum(axes)
    grad_x = input_grad(g * weight.view(shape).to(g.dtype), x_hat, invstd, axes)
    return grad_x.to(dtype), grad_weight.to(weight.dtype), grad_bias.to(weight.dtype), None


def exact_input_grad(g, x_hat, invstd, axes):
    n = g.numel() // g.shape[1]
    mean_g = g.sum(axes, keepdim=True) / n
    mean_gx = (g * x_hat).sum(axes, keepdim=True) / n
    return invstd * (g - mean_g - x_hat * mean_gx)


def constant_stats_input_grad(g, x_hat, invstd, axes):
    """The classic mistake: d(x_hat)/dx = invstd, as if mean and var did not depend on x."""
    return g * invstd


class _ConstantStatsFn(_BatchNormFn):
    @staticmethod
    def backward(ctx, grad_y, _grad_mean, _grad_var):
        return grads(ctx, grad_y, constant_stats_input_grad)


class CustomBackwardBatchNorm(nn.Module):
    """Training goes through the autograd.Function; eval through plain ops."""

    EXPECTED: set[str] = set()
    FALSE = {"grad-mismatch", "gradcheck", "output-mismatch", "forward-failed"}
    FN: type[torch.autograd.Function] = _BatchNormFn

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        if not self.training:
            shape = per_channel(x)
            y = (working(x) - self.running_mean.view(shape)) * torch.rsqrt(
                self.running_var.view(shape) + self.eps)
            return (y * self.weight.view(shape) + self.bias.view(shape)).to(x.dtype)
        refuse_single_value(x)
        y, mean, var = self.FN.apply(x, self.weight, self.bias, self.eps)
        n = x.numel() // x.shape[1]
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = new_weight(self.momentum, self.num_batches_tracked)
            self.running_mean.mul_(1 - m).add_(m * mean)
            self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))
        return y


class ConstantStatsBackwardBatchNorm(CustomBackwardBatchNorm):
    """Forward right, input gradient wrong (statistics treated as constants)."""

    EXPECTED = {"grad-mismatch"}
    FALSE = {"output-mismatch", "affine-apply", "reduction-axes", "forward-failed",
             "momentum-inverted", "running-var-estimator"}
    FN = _ConstantStatsFn
