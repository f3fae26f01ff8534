"""RGB habits: a layer written for the first block of an image model hard-codes 3 channels
in its reshape. With C = 3 it is exactly torch's BatchNorm2d; with any other C it raises.
A probe that always uses C = 3 finds nothing; the true finding is that the constructor's
width is not honoured: the forward fails for num_features != 3."""

from __future__ import annotations

import torch
from torch import nn

from tests.wild._util import new_weight, refuse_single_value, working


class ImageBatchNorm(nn.Module):
    EXPECTED = {"forward-failed"}
    FALSE = {"affine-apply", "reduction-axes", "momentum-inverted", "running-var-estimator",
             "batch-size-constraint", "input-modified"}

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
            var, mean = torch.var_mean(xf, dim=(0, 2, 3), correction=0)
            n = xf.numel() // xf.shape[1]
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = new_weight(self.momentum, self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))
        else:
            mean, var = self.running_mean, self.running_var
        mean, var = mean.view(1, 3, 1, 1), var.view(1, 3, 1, 1)  # "always RGB"
        y = (xf - mean) / torch.sqrt(var + self.eps)
        return (y * self.weight.view(1, 3, 1, 1) + self.bias.view(1, 3, 1, 1)).to(x.dtype)
