"""Correct BatchNorms in the styles people write them; each must come out clean (no error,
no warning) under the pytorch spec."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from tests.wild._util import channel_axes, new_weight, per_channel, refuse_single_value, working

NO_FALSE_ALARM = {"input-rank-unsupported", "forward-failed", "affine-apply", "reduction-axes",
                  "momentum-none", "batch-size-constraint", "input-modified", "output-mismatch"}


class ScratchBatchNorm(nn.Module):
    """Textbook from-scratch BatchNorm for any rank: var_mean over every axis but 1."""

    EXPECTED: set[str] = set()
    FALSE = NO_FALSE_ALARM

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        xf, shape = working(x), per_channel(x)
        if self.training:
            refuse_single_value(x)
            var, mean = torch.var_mean(xf, dim=channel_axes(x), correction=0)
            n = xf.numel() // xf.shape[1]
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = new_weight(self.momentum, self.num_batches_tracked)
                self.running_mean.copy_(torch.lerp(self.running_mean.to(mean.dtype), mean, m))
                self.running_var.copy_(torch.lerp(self.running_var.to(var.dtype), var * n / (n - 1), m))
        else:
            mean, var = self.running_mean, self.running_var
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return (y * self.weight.view(shape) + self.bias.view(shape)).to(x.dtype)


class FunctionalBatchNorm(nn.Module):
    """Own parameters and buffers, arithmetic delegated to F.batch_norm (a common port style);
    the width is called `channels`, positional."""

    EXPECTED: set[str] = set()
    FALSE = NO_FALSE_ALARM

    def __init__(self, channels, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        factor = 0.0
        if self.training:
            self.num_batches_tracked.add_(1)
            factor = new_weight(self.momentum, self.num_batches_tracked)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, factor, self.eps)


class KerasNamedBatchNorm(nn.Module):
    """Ported naming: `dim`, `epsilon`, `mom`; statistics by flattening to (C, -1)."""

    EXPECTED: set[str] = set()
    FALSE = NO_FALSE_ALARM

    def __init__(self, dim, epsilon=1e-5, mom=0.1):
        super().__init__()
        self.epsilon, self.mom = epsilon, mom
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        c = x.shape[1]
        flat = working(x).transpose(0, 1).reshape(c, -1)  # (C, everything else)
        if self.training:
            if flat.shape[1] < 2:
                raise ValueError("Expected more than 1 value per channel when training")
            mean = flat.mean(1)
            centered = flat - mean[:, None]
            var = (centered * centered).mean(1)
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = new_weight(self.mom, self.num_batches_tracked)
                k = flat.shape[1]
                self.running_mean.copy_((1 - m) * self.running_mean + m * mean)
                self.running_var.copy_((1 - m) * self.running_var + m * var * k / (k - 1))
        else:
            mean, var = self.running_mean, self.running_var
        shape = per_channel(x)
        y = (working(x) - mean.reshape(shape)) / (var.reshape(shape) + self.epsilon).sqrt()
        return (self.weight.reshape(shape) * y + self.bias.reshape(shape)).to(x.dtype)


class ScaleShiftBatchNorm(nn.Module):
    """Folded form of torchvision/detectron2 layers: scale = w * rsqrt(var + eps),
    shift = b - mean * scale, y = x * scale + shift; trains like torch."""

    EXPECTED: set[str] = set()
    FALSE = NO_FALSE_ALARM

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        xf = working(x)
        if self.training:
            refuse_single_value(x)
            axes = channel_axes(x)
            mean = xf.mean(axes)
            var = xf.var(axes, unbiased=False)
            n = xf.numel() // xf.shape[1]
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = new_weight(self.momentum, self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean, alpha=m)
                self.running_var.mul_(1 - m).add_(var * (n / (n - 1)), alpha=m)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight * torch.rsqrt(var + self.eps)
        shift = self.bias - mean * scale
        shape = per_channel(x)
        return (xf * scale.view(shape) + shift.view(shape)).to(x.dtype)


class MyBN(nn.BatchNorm2d):
    """`class MyBN(nn.BatchNorm2d): pass`: no 1d/2d/3d in the name, rank 4 only like its base."""

    EXPECTED: set[str] = set()
    FALSE = NO_FALSE_ALARM


PartialBatchNorm1d = functools.partial(nn.BatchNorm1d, eps=1e-5, affine=True)
PartialBatchNorm1d.EXPECTED = set()  # type: ignore[attr-defined]
PartialBatchNorm1d.FALSE = NO_FALSE_ALARM  # type: ignore[attr-defined]


def make_norm(num_features, eps=1e-5, momentum=0.1):
    """A factory, as model zoos write `norm_layer=make_norm`."""
    return nn.BatchNorm3d(num_features, eps=eps, momentum=momentum)


make_norm.EXPECTED = set()  # type: ignore[attr-defined]
make_norm.FALSE = NO_FALSE_ALARM  # type: ignore[attr-defined]


class ConvNorm(nn.Module):
    """Hand-written for conv feature maps: asserts 4-D input, otherwise exactly
    torch.nn.BatchNorm2d. It behaves like BatchNorm2d, which is clean, so it must be too."""

    EXPECTED: set[str] = set()
    FALSE = NO_FALSE_ALARM

    def __init__(self, C, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(C))
        self.bias = nn.Parameter(torch.zeros(C))
        self.register_buffer("running_mean", torch.zeros(C))
        self.register_buffer("running_var", torch.ones(C))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        if x.dim() != 4:
            raise ValueError(f"expected 4D input (got {x.dim()}D input)")
        xf = working(x)
        if self.training:
            refuse_single_value(x)
            mean = xf.mean((0, 2, 3))
            var = ((xf - mean[None, :, None, None]) ** 2).mean((0, 2, 3))
            n = xf.numel() // xf.shape[1]
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = new_weight(self.momentum, self.num_batches_tracked)
                self.running_mean.copy_(self.running_mean * (1 - m) + mean * m)
                self.running_var.copy_(self.running_var * (1 - m) + var * n / (n - 1) * m)
        else:
            mean, var = self.running_mean, self.running_var
        y = (xf - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + self.eps)
        return (y * self.weight[None, :, None, None] + self.bias[None, :, None, None]).to(x.dtype)
