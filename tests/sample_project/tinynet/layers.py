"""Hand-written normalization layers, as a real project would keep them."""

from __future__ import annotations

import torch
from torch import nn


class BatchNorm2d(nn.Module):
    """PyTorch-convention BatchNorm for (N, C, H, W) written from scratch.

    One known difference from torch.nn.BatchNorm2d, waived in pyproject.toml: training on
    one value per channel is not refused (torch raises ValueError; tinynet never does that).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected 4D input (got {x.dim()}D input)")
        shape, x32 = (1, -1, 1, 1), x.double()  # statistics in float64: no rounding to argue about
        if self.training:
            mean = x32.mean(dim=(0, 2, 3))
            var = x32.var(dim=(0, 2, 3), unbiased=False)
            n = x.numel() // x.shape[1]
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                # momentum=None: the cumulative average, as torch.nn.BatchNorm2d
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / max(n - 1, 1))
        else:
            mean, var = self.running_mean.double(), self.running_var.double()
        scale = self.weight.double() * torch.rsqrt(var + self.eps)
        shift = self.bias.double() - mean * scale
        return (x32 * scale.view(shape) + shift.view(shape)).to(x.dtype)


class FrozenBatchNorm2d(nn.Module):
    """torchvision/detection style: statistics and affine parameters fixed, the same in both modes."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1).to(x.dtype) + shift.reshape(1, -1, 1, 1).to(x.dtype)
