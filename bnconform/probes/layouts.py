"""Probes of memory layouts: channels_last inputs and modules, permuted and sliced inputs.

Each variant holds the same values as a contiguous input; the implementation's own output
on the contiguous input is the yardstick, so only layout-dependent behaviour shows here
(whether that output is right is the other checks' business). torch.nn.BatchNorm (CPU,
torch 2.13) returns channels_last output for channels_last input, and keeps a permuted
input's strides; for other layouts only the values are specified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bnconform.context import RunContext
from bnconform.errors import UserCodeError
from bnconform.probes.devices import MEANS, STDS, Parity, compare, isolated, prepared_raw, run, snapshot, step

FORMATS = {4: torch.channels_last, 5: torch.channels_last_3d}
NAMES = {4: "channels_last", 5: "channels_last_3d"}


@dataclass(frozen=True)
class Variant:
    label: str
    make: Callable[[torch.Tensor], torch.Tensor]  # same values, another layout
    module_format: torch.memory_format | None = None  # module.to(memory_format=...) first
    output_format: torch.memory_format | None = None  # layout the output must have


@dataclass
class LayoutResult:
    errors: list[str] = field(default_factory=list)  # raises, or different values
    layouts: list[str] = field(default_factory=list)  # right values, wrong output layout
    tried: list[str] = field(default_factory=list)
    parity: Parity = field(default_factory=lambda: Parity({}, {}, {}))


def channels_last_variants(rank: int) -> list[Variant]:
    fmt, name = FORMATS[rank], NAMES[rank]
    return [
        Variant(f"{name} input", lambda x: x.contiguous(memory_format=fmt), output_format=fmt),
        Variant(f"{name} module and input", lambda x: x.contiguous(memory_format=fmt), fmt, fmt),
    ]


def transposed_storage(x: torch.Tensor) -> torch.Tensor:
    """Same values, stored with the first and last axes swapped (a permuted, non-contiguous view)."""
    return x.transpose(0, -1).contiguous().transpose(0, -1)


def strided(x: torch.Tensor) -> torch.Tensor:
    """Same values as every second element of a tensor twice as long in the last axis (a slice)."""
    wide = torch.zeros(*x.shape[:-1], 2 * x.shape[-1], dtype=x.dtype, device=x.device)
    wide[..., ::2] = x
    return wide[..., ::2]


NON_CONTIGUOUS = [Variant("permuted input", transposed_storage), Variant("sliced input", strided)]


def memory_formats(ctx: RunContext, ranks: tuple[int, ...]) -> LayoutResult:
    result = LayoutResult()
    for rank in (r for r in ranks if r in FORMATS):
        run_variants(ctx, rank, channels_last_variants(rank), result)
    return result


def non_contiguous(ctx: RunContext, ranks: tuple[int, ...]) -> LayoutResult:
    result = LayoutResult()
    for rank in ranks:
        run_variants(ctx, rank, NON_CONTIGUOUS, result)
    return result


def outputs(ctx: RunContext, rank: int, x: torch.Tensor, label: str,
            module_format: torch.memory_format | None = None) -> dict[str, torch.Tensor | None]:
    """Train output, running statistics after that step, then the eval output (inside `isolated`)."""
    module, found = prepared_raw(ctx, str(ctx.device), ctx.dtype, rank)
    if module_format is not None:
        step(f"module.to(memory_format={module_format})", lambda: module.to(memory_format=module_format))
    train = run(module, x, train=True, what=f"on a {label}")
    stats = {role: snapshot(found, module, role) for role in ("running_mean", "running_var")}
    return {"train output": train, **stats, "eval output": run(module, x, train=False, what=f"on a {label}")}


def run_variants(ctx: RunContext, rank: int, variants: list[Variant], result: LayoutResult) -> None:
    x = ctx.input_with_stats(rank, MEANS, STDS, salt=330 + rank, batch=4)
    baseline = isolated(ctx, "contiguous input", lambda: outputs(ctx, rank, x, "contiguous input"))
    n = x.numel() // ctx.channels
    for variant in variants:
        label = f"{variant.label} (rank {rank})"
        result.tried.append(label)
        try:
            observed = isolated(ctx, label, lambda v=variant, lb=label: outputs(ctx, rank, v.make(x), lb,
                                                                               v.module_format))
        except UserCodeError as error:
            result.errors.append(f"{label}: {error}")
            continue
        judge(ctx, label, variant, baseline, observed, n, result)


def judge(ctx: RunContext, label: str, variant: Variant, baseline: dict, observed: dict, n: int,
          result: LayoutResult) -> None:
    for name, expected in baseline.items():
        if expected is None:
            continue
        key = f"{label}: {name}"
        compare(ctx, key, observed[name], expected, ctx.dtype, n, result.parity)
        if not result.parity.ratios[key] <= 1:
            result.errors.append(f"{key} differs from the contiguous input's by {result.parity.errors[key]:.3g}"
                                 f" (allowed {result.parity.allowed[key]:.3g})")
    fmt = variant.output_format
    for name in ("train output", "eval output"):
        y = observed[name]
        if fmt is not None and y is not None and not y.is_contiguous(memory_format=fmt):
            result.layouts.append(f"{label}: the {name} is not {NAMES[y.dim()]} (strides {tuple(y.stride())})")
