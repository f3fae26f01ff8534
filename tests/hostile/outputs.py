"""Forwards that return something bnconform must not measure: a meta tensor, a wrong shape."""

import torch


class ReturnsMeta(torch.nn.BatchNorm2d):
    def forward(self, x):
        super().forward(x)
        return torch.empty_like(x, device="meta")


class EvalWrongShape(torch.nn.BatchNorm2d):
    """Training is correct; eval mode drops all but the first sample."""

    def forward(self, x):
        y = super().forward(x)
        return y if self.training else y[:1]
