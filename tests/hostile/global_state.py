"""Flips global torch state at import (real-world habits); the class itself is correct."""

import torch

torch.set_flush_denormal(True)
torch.set_grad_enabled(False)


class Correct(torch.nn.BatchNorm2d):
    pass


class HangsInForward(torch.nn.BatchNorm2d):
    """The import's changes are still reported when the first forward hangs and the worker is stopped."""

    def forward(self, x):
        while True:
            pass
