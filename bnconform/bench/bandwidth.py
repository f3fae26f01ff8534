"""The memory-bandwidth ceiling a BatchNorm pass is compared with, and achieved GB/s.

The bytes each pass must move are model.BYTES_MODEL; this module turns them into GB/s and
a fraction of the ceiling: the device's theoretical bandwidth on CUDA, a streaming copy
measured on this machine on the CPU.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch

from .model import PASSES, bytes_moved

__all__ = ["PASSES", "Ceiling", "bytes_moved", "ceiling", "cpu_copy_ceiling", "cuda_ceiling", "fraction", "gbps"]

# Theoretical DRAM/HBM bandwidth in GB/s by device-name fragment, for when the device
# properties lack the memory clock or bus width. Most specific names first.
KNOWN_GPUS: tuple[tuple[str, float], ...] = (
    ("GH200", 4000.0), ("H200", 4800.0), ("H100 PCIe", 2000.0), ("H100", 3350.0), ("H800", 3350.0),
    ("A100-SXM4-80GB", 2039.0), ("A100 80GB", 1935.0), ("A100", 1555.0), ("A800", 1555.0),
    ("A10G", 600.0), ("A10", 600.0), ("A30", 933.0), ("L40S", 864.0), ("L40", 864.0), ("L4", 300.0),
    ("V100", 900.0), ("T4", 320.0), ("P100", 732.0), ("RTX 4090", 1008.0), ("RTX 3090", 936.0),
    ("RTX A6000", 768.0), ("RTX 6000 Ada", 960.0),
)
COPY_BYTES = 128 << 20  # per tensor: far larger than any CPU's last-level cache


@dataclass(frozen=True)
class Ceiling:
    """A bandwidth ceiling in GB/s (1e9 bytes/s) and how it was obtained."""

    gbps: float
    source: str


def gbps(n_bytes: int, seconds: float) -> float:
    return n_bytes / seconds / 1e9 if seconds > 0 else 0.0


def ceiling(device: str) -> Ceiling:
    """The device's theoretical bandwidth (CUDA) or a streaming copy measured here (CPU)."""
    if device == "cuda":
        return cuda_ceiling(torch.cuda.get_device_properties(torch.cuda.current_device()))
    return cpu_copy_ceiling(torch.get_num_threads())


def cuda_ceiling(props: object) -> Ceiling:
    """2 (double data rate) x memory clock x bus width when the properties have both, else the table."""
    clock_khz = getattr(props, "memory_clock_rate", None)
    bus_bits = getattr(props, "memory_bus_width", None)
    name = str(getattr(props, "name", "unknown GPU"))
    if clock_khz and bus_bits:
        value = 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9
        return Ceiling(value, f"{name}: theoretical, 2 x {clock_khz / 1e3:g} MHz x {bus_bits} bit (device properties)")
    for fragment, value in KNOWN_GPUS:
        if fragment.lower() in name.lower():
            return Ceiling(value, f"{name}: theoretical {value:g} GB/s (bnconform's table of known GPUs)")
    return Ceiling(0.0, f"{name}: unknown theoretical bandwidth (not in device properties or the table)")


@functools.lru_cache(maxsize=4)
def cpu_copy_ceiling(threads: int, repeats: int = 15) -> Ceiling:
    """Best bandwidth of dst.copy_(src) over 128 MiB float32 tensors, counting read + write.

    Best of `repeats`, as STREAM reports it: a ceiling is what the memory system can do,
    and on a shared machine every other process only ever makes a copy slower.

    Measured once per process and thread count (cached): the ceiling a memory-bound CPU
    kernel can reach with `threads` torch threads (the benchmark's own) on this machine, as
    it is loaded right now.
    """
    assert threads == torch.get_num_threads(), "the cache key must be the threads in use"
    src = torch.ones(COPY_BYTES // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)  # first touch: page faults are not bandwidth
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        dst.copy_(src)
        samples.append(time.perf_counter() - started)
    value = gbps(2 * COPY_BYTES, min(samples))
    return Ceiling(value, f"CPU streaming copy measured here: 128 MiB copy_, best of {repeats}, "
                          f"{threads} thread{'s' * (threads != 1)}")


def fraction(achieved_gbps: float, limit: Ceiling) -> float | None:
    """Achieved / ceiling, or None when the ceiling is unknown."""
    return achieved_gbps / limit.gbps if limit.gbps > 0 else None
