"""Small pieces several corpus classes share: the parts a correct BatchNorm must get right
but that are not the pattern a class is about (half precision, batch-of-one, momentum=None)."""

from __future__ import annotations

import torch

HALF = (torch.float16, torch.bfloat16)


def working(x: torch.Tensor) -> torch.Tensor:
    """Half inputs accumulate statistics in float32, as torch does."""
    return x.float() if x.dtype in HALF else x


def channel_axes(x: torch.Tensor) -> list[int]:
    """Every axis but the channel axis 1."""
    return [0, *range(2, x.dim())]


def per_channel(x: torch.Tensor) -> list[int]:
    """A (C,) vector's view shape against x."""
    return [1, -1] + [1] * (x.dim() - 2)


def refuse_single_value(x: torch.Tensor) -> None:
    if x.numel() // x.shape[1] == 1:
        raise ValueError("Expected more than 1 value per channel when training")


def new_weight(momentum: float | None, count: torch.Tensor) -> float:
    """Weight of the new batch; momentum=None is PyTorch's cumulative average."""
    return 1.0 / float(count) if momentum is None else momentum
