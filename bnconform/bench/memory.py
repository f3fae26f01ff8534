"""Peak memory of a forward+backward pass and memory growth over training steps.

CPU: tracemalloc cannot see torch's allocator, and torch keeps no CPU allocation counters,
so `LiveTensors` (a TorchDispatchMode) records the storage of every tensor an operator
returns -- forward and backward operators alike -- and keeps a weak reference to it. The
live bytes are the storages still referenced; the peak is their maximum after any operator.
It measures tensor storage created inside the window, not allocator overhead, Python objects
or autograd's C++ nodes. CUDA: torch.cuda.max_memory_allocated around the same window
(the caching allocator's accounting, block rounding included).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_iter

GROWTH_STEPS = 100


class LiveTensors(TorchDispatchMode):
    """Bytes of tensor storage created inside the `with` block and still alive."""

    def __init__(self) -> None:
        super().__init__()
        self._refs: dict[int, tuple[StorageWeakRef, int]] = {}
        self.live = 0
        self.peak = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for value in tree_iter(out):
            if isinstance(value, torch.Tensor) and value.device.type != "meta":
                storage = value.untyped_storage()
                ref = StorageWeakRef(storage)
                if ref.cdata not in self._refs:  # views and in-place results share a storage
                    self._refs[ref.cdata] = (ref, storage.nbytes())
        self.refresh()
        return out

    def refresh(self) -> int:
        """Drop dead storages; update and return the live bytes (and the peak)."""
        for key in [k for k, (ref, _) in self._refs.items() if ref.expired()]:
            del self._refs[key]
        self.live = sum(n for _, n in self._refs.values())
        self.peak = max(self.peak, self.live)
        return self.live


def warm_up() -> None:
    """Enter a dispatch mode once: the first entry imports torch._dynamo (seconds, once)."""
    with LiveTensors():
        torch.zeros(1).add_(1)


@dataclass(frozen=True)
class Growth:
    """Memory retained per training step (bytes), measured over `steps` steps at `shape`."""

    bytes_per_step: float
    steps: int
    shape: tuple[int, ...]

    @property
    def mb_per_step(self) -> float:
        return self.bytes_per_step / 1e6


def peak_bytes(run: Callable[[], object], device: str) -> int:
    """Peak bytes allocated by `run()` above what was live before it (its inputs excluded)."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    with LiveTensors() as live:
        run()
    return live.peak


def growth(module: torch.nn.Module, make_input: Callable[[], torch.Tensor], device: str,
           steps: int = GROWTH_STEPS) -> Growth:
    """Bytes still alive after `steps` training steps, per step, after one unmeasured step.

    A step is what training does to a layer: a fresh batch that requires grad (the output of
    an earlier layer), forward, backward. Parameter gradients accumulate in place, so a
    correct BatchNorm retains nothing; running statistics that keep autograd history retain
    each batch's graph and the tensors it saved.
    """
    module.train()
    shape = tuple(make_input().shape)

    def step() -> None:
        x = make_input().requires_grad_(True)
        module(x).sum().backward()

    step()  # parameter .grad tensors are allocated once, on the first step: not growth
    if device == "cuda":
        gc.collect()  # garbage freed during the steps would hide growth
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        for _ in range(steps):
            step()
        gc.collect()
        torch.cuda.synchronize()
        return Growth((torch.cuda.memory_allocated() - before) / steps, steps, shape)
    with LiveTensors() as live:
        for _ in range(steps):
            step()
        gc.collect()  # only storages kept by real references count, not uncollected cycles
        retained = live.refresh()
    return Growth(retained / steps, steps, shape)
