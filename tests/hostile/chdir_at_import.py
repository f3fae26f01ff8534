"""Moves the working directory at import; the default reports/ must not move with it."""

import os
import tempfile

import torch

os.chdir(tempfile.gettempdir())


class Correct(torch.nn.BatchNorm2d):
    pass
