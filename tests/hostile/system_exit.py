"""SystemExit(0) from user code bnconform calls outside the guarded call itself."""

import torch


def __getattr__(name):  # `bnconform check tests.hostile.system_exit:Missing` asks for this
    raise SystemExit(0)


class Unprintable(Exception):
    def __str__(self):
        raise SystemExit(0)


class ExitingStr(torch.nn.BatchNorm2d):
    """forward raises an exception whose __str__ raises SystemExit(0)."""

    def forward(self, x):
        raise Unprintable()


class Sneaky(torch.Tensor):
    def detach(self):
        raise SystemExit(0)


class ReturnsSubclass(torch.nn.BatchNorm2d):
    """Returns a tensor subclass whose detach() raises SystemExit(0)."""

    def forward(self, x):
        return super().forward(x).as_subclass(Sneaky)
