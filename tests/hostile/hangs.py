"""Classes that never return: in C code holding the GIL, and in a plain Python loop."""

import ctypes

import torch

# PyDLL keeps the GIL during the call (CDLL releases it): nothing else in the process runs,
# no signal handler, no watchdog thread. libc's sleep() is the C code that does not return.
_LIBC = ctypes.PyDLL(None)


class SleepsInCWithGil(torch.nn.BatchNorm2d):
    def forward(self, x):
        _LIBC.sleep(3600)
        return super().forward(x)


class LoopsInEval(torch.nn.BatchNorm2d):
    def forward(self, x):
        while not self.training:
            pass
        return super().forward(x)
