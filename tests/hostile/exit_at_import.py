"""The module body ends the interpreter with status 0."""

import os

import torch

os._exit(0)


class Never(torch.nn.BatchNorm2d):
    pass
