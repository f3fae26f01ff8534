"""Correct classes with unusual habits: each must PASS."""

import threading

import torch

_STOP = threading.Event()


class StartsThread(torch.nn.BatchNorm2d):
    """Starts a non-daemon thread that never ends; it must not keep the run alive."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        threading.Thread(target=_STOP.wait, daemon=False).start()
