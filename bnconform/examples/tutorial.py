"""A from-scratch BatchNorm in the style of many tutorials, with their classic mistakes.

bnconform ships it as a worked example: `bnconform check bnconform.examples.tutorial:BatchNorm`
finds every mistake below. Do not copy this class; torch.nn.BatchNorm2d is the fix.

The mistakes (on purpose):
- momentum=0.9, a Keras/MXNet-style value (the weight of the OLD running value), used with
  PyTorch's update formula (where momentum is the weight of the NEW batch): the running
  statistics follow only the last batch;
- the running variance is the biased batch variance (PyTorch stores the unbiased one);
- a 2-D step reduces with keepdim=True, so the running statistics become (1, C);
- only (N, C) and (N, C, H, W) inputs are handled: (N, C, L) and 5-D inputs fail.
"""

from __future__ import annotations

import torch
from torch import nn


class BatchNorm(nn.Module):
    """Batch normalization for fully connected (N, C) and convolutional (N, C, H, W) inputs."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.9) -> None:
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.gamma = nn.Parameter(torch.ones(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("moving_mean", torch.zeros(num_features))
        self.register_buffer("moving_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() in (2, 4), "only fully connected or convolutional inputs"
        if x.dim() == 2:
            shape = (1, -1)
            mean = x.mean(dim=0, keepdim=True)
            var = ((x - mean) ** 2).mean(dim=0, keepdim=True)
        else:
            shape = (1, -1, 1, 1)
            mean = x.mean(dim=(0, 2, 3))
            var = ((x - mean.view(shape)) ** 2).mean(dim=(0, 2, 3))
        if self.training:
            x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
            with torch.no_grad():
                self.moving_mean = (1.0 - self.momentum) * self.moving_mean + self.momentum * mean
                self.moving_var = (1.0 - self.momentum) * self.moving_var + self.momentum * var
        else:
            x_hat = (x - self.moving_mean.view(shape)) / torch.sqrt(self.moving_var.view(shape) + self.eps)
        return self.gamma.view(shape) * x_hat + self.beta.view(shape)
