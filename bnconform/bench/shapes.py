"""Which input shapes a benchmark runs, and which torch.nn.BatchNorm matches each rank."""

from __future__ import annotations

import torch

from bnconform.errors import UsageError

Shape = tuple[int, ...]

# Realistic CNN activations small enough that the quick CPU run stays well under a minute.
QUICK_SHAPES: tuple[Shape, ...] = ((32, 64, 28, 28), (64, 32, 16, 16), (16, 128, 8, 8))
# --full: ResNet-50 stage activations at batch 256, halved in batch until they fit the budget.
# All 4-D like the quick set: other ranks only when asked for with --shapes, since many
# hand-written BatchNorms handle one rank.
FULL_SHAPES: tuple[Shape, ...] = ((256, 64, 56, 56), (256, 256, 56, 56), (256, 512, 28, 28),
                                  (256, 1024, 14, 14), (256, 2048, 7, 7))
# A working set per case: x, dy, y, dx, saved tensors and the target's temporaries.
WORKING_SET_FACTOR = 8

TORCH_CLASSES = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}


def parse_shape(text: str) -> Shape:
    """"32,64,28,28" -> (32, 64, 28, 28); a bad value is a one-line UsageError."""
    parts = [p.strip() for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--shapes {text!r}: expected integers like 32,64,28,28") from None
    if len(shape) not in TORCH_CLASSES:
        raise UsageError(f"--shapes {text!r}: expected 2 to 5 dimensions (N,C[,L|H,W|D,H,W]), got {len(shape)}")
    if min(shape) < 1 or shape[0] * prod(shape[2:]) < 2:
        raise UsageError(f"--shapes {text!r}: every size must be >= 1 and each channel needs 2+ values")
    return shape


def prod(values: Shape) -> int:
    result = 1
    for v in values:
        result *= v
    return result


def shape_text(shape: Shape) -> str:
    return "x".join(str(s) for s in shape)


def torch_class(rank: int) -> type[torch.nn.Module]:
    """The torch.nn.BatchNorm with the same rank semantics as the target sees."""
    return getattr(torch.nn, TORCH_CLASSES[rank])


def fit_to_memory(shapes: tuple[Shape, ...], budget_bytes: int, element_size: int) -> list[Shape]:
    """Halve each shape's batch until its working set fits `budget_bytes` (never below 2)."""
    fitted = []
    for shape in shapes:
        n = shape[0]
        while n > 2 and WORKING_SET_FACTOR * element_size * n * prod(shape[1:]) > budget_bytes:
            n //= 2
        fitted.append((n, *shape[1:]))
    return fitted


def memory_budget(device: str) -> int:
    """Bytes a --full run may use: half the free device memory (CUDA) or of available RAM (CPU)."""
    if device == "cuda":
        free, _total = torch.cuda.mem_get_info()
        return free // 2
    return available_ram() // 2


def available_ram() -> int:
    """MemAvailable from /proc/meminfo; 4 GiB where that cannot be read (not Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def select_shapes(requested: list[str] | None, full: bool, device: str, element_size: int) -> list[Shape]:
    """--shapes as given, else the quick defaults, else (--full) the full set fitted to memory."""
    if requested:
        return [parse_shape(text) for text in requested]
    if full:
        # every case's x and dy stay allocated for the whole run: the shapes share the budget
        return fit_to_memory(FULL_SHAPES, memory_budget(device) // len(FULL_SHAPES), element_size)
    return list(QUICK_SHAPES)
