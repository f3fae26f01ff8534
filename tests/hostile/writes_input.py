"""Correct output, but the forward writes into its input tensor."""

import torch


class AddsToInput(torch.nn.BatchNorm2d):
    def forward(self, x):
        y = super().forward(x)
        with torch.no_grad():  # in place, behind autograd's back
            x.add_(1.0)
        return y
