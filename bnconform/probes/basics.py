"""Prerequisite probes: can the class be built, run, and are its tensors findable?"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bnconform.context import RunContext
from bnconform.discover import Discovery, discover, discover_by_behaviour
from bnconform.errors import UserCodeError
from bnconform.probes.common import forward


@dataclass(frozen=True)
class Construction:
    call: str


def construction(ctx: RunContext) -> Construction:
    """Build the module with the spec's defaults (raises UserCodeError on failure)."""
    call = ctx.builder.describe(ctx.channels, **rank_role(ctx, ctx.primary_rank))
    ctx.guarded(f"constructing {call}", lambda: ctx.builder.build(ctx.channels, **rank_role(ctx, ctx.primary_rank)))
    return Construction(call)


def rank_role(ctx: RunContext, rank: int) -> dict[str, int]:
    return {"rank": rank} if ctx.builder.accepts("rank") else {}


@dataclass(frozen=True)
class Smoke:
    dtype: torch.dtype
    input_shape: tuple[int, ...]
    float64_error: str  # why float64 was not used, "" when it was


def smoke(ctx: RunContext) -> Smoke:
    """One training forward on the preferred rank; picks float64, else float32, for probes."""
    first_error: UserCodeError | None = None
    for dtype in (torch.float64, torch.float32):
        ctx.dtype = dtype
        try:
            x = ctx.input_with_stats(ctx.primary_rank, [0.5, -1.0, 2.0], [1.0, 2.0, 0.5], salt=1)
            y = forward(ctx, ctx.build(), x)
            validate_output(x, y)
            return Smoke(dtype, tuple(x.shape), "" if first_error is None else str(first_error))
        except UserCodeError as error:
            first_error = first_error or error
    ctx.dtype = torch.float64
    assert first_error is not None
    raise first_error


def validate_output(x: torch.Tensor, y: torch.Tensor) -> None:
    if y.shape != x.shape:
        raise UserCodeError(
            "train-mode forward", f"returned shape {tuple(y.shape)} for input {tuple(x.shape)}", "shape"
        )
    if not torch.isfinite(y).all():
        raise UserCodeError("train-mode forward", "returned NaN or inf for a well-conditioned input", "nan")


def found_tensors(ctx: RunContext) -> Discovery:
    """Weight, bias and running statistics by name, then running statistics by behaviour."""
    module = ctx.build()
    found = ctx.guarded("inspecting the module", lambda: discover(module, ctx.channels))
    if found.has("running_mean") and found.has("running_var"):
        return found
    x = ctx.input_with_stats(ctx.primary_rank, [3.0, -4.0, 5.0], [2.0, 3.0, 4.0], salt=2)
    axes = ctx.spec.axes_for_rank(x.dim())
    mean, var = x.double().mean(dim=axes), x.double().var(dim=axes)
    by_behaviour = ctx.guarded(
        "inspecting the module after a step",
        lambda: discover_by_behaviour(module, ctx.channels, lambda: forward(ctx, module, x), mean.cpu(), var.cpu()),
    )
    return merge(found, by_behaviour)


def merge(by_name: Discovery, by_behaviour: Discovery) -> Discovery:
    slots = dict(by_behaviour.slots)
    slots.update(by_name.slots)
    return Discovery(slots)


@dataclass(frozen=True)
class RankSupport:
    accepted: tuple[int, ...]
    rejected: dict[int, str]  # rank -> error


def rank_support(ctx: RunContext) -> RankSupport:
    """Train-mode forward on every rank the target should accept."""
    accepted, rejected = [], {}
    means, stds = [0.5, -1.0, 2.0], [1.0, 2.0, 0.5]
    for rank in ctx.ranks:
        try:
            x = ctx.input_with_stats(rank, means, stds, salt=10 + rank)
            validate_output(x, forward(ctx, ctx.build(rank), x))
            accepted.append(rank)
        except UserCodeError as error:
            rejected[rank] = str(error)
    return RankSupport(tuple(accepted), rejected)
