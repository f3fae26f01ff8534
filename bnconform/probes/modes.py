"""Probes of train/eval semantics: which statistics each mode uses and which it updates."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bnconform.context import RunContext
from bnconform.errors import UserCodeError
from bnconform.probes.common import FAR_MEANS, FAR_VARS, affine_values, classify, forward, prepare
from bnconform.probes.running import BATCH_MEANS, BATCH_STDS, snapshot
from bnconform.reference import RunningState, eval_forward, train_forward

MODE_TOL = 0.02  # batch and far-away running statistics give outputs that differ by > 50 %


@dataclass(frozen=True)
class ModeRun:
    uses: str  # "batch" | "running" | "other"
    updates: bool | None  # None: no running statistics to watch


@dataclass(frozen=True)
class ModeObservation:
    train_grad: ModeRun
    train_no_grad: ModeRun
    eval_grad: ModeRun
    eval_no_grad: ModeRun


def modes(ctx: RunContext) -> ModeObservation:
    return ModeObservation(
        run_mode(ctx, train=True, grad=True),
        run_mode(ctx, train=True, grad=False),
        run_mode(ctx, train=False, grad=True),
        run_mode(ctx, train=False, grad=False),
    )


def run_mode(ctx: RunContext, *, train: bool, grad: bool) -> ModeRun:
    prep = prepare(ctx, running=(FAR_MEANS, FAR_VARS))
    before = snapshot(prep)
    weight, bias = affine_values(prep.discovery, prep.module, ctx.channels)
    x = ctx.input_with_stats(ctx.primary_rank, BATCH_MEANS, BATCH_STDS, salt=80)
    y = forward(ctx, prep.module, x, train=train, grad=grad)
    after = snapshot(prep)
    behaviour = ctx.behaviour()
    xr = x.double().cpu()
    c = ctx.channels
    far = RunningState(
        torch.tensor(FAR_MEANS * c, dtype=torch.float64)[:c], torch.tensor(FAR_VARS * c, dtype=torch.float64)[:c]
    )
    candidates = {
        "batch": train_forward(behaviour, xr, None, weight, bias)[0],
        "running": eval_forward(behaviour, xr, far, weight, bias),
    }
    updates = None
    if before is not None and after is not None:
        updates = bool(before.shape != after.shape or not torch.allclose(before, after, rtol=1e-9, atol=1e-12))
    return ModeRun(classify(y, candidates, MODE_TOL), updates)


@dataclass(frozen=True)
class BatchOfOne:
    raised: str  # "" when the forward returned
    output_finite: bool
    running_finite: bool
    shape: tuple[int, ...]


def batch_of_one(ctx: RunContext) -> BatchOfOne:
    """Training with exactly one value per channel."""
    rank = ctx.primary_rank
    shape = [1] * rank
    shape[1] = ctx.channels
    x = ctx.to_layout(torch.linspace(-1, 1, ctx.channels, dtype=torch.float64).reshape(shape))
    x = x.to(ctx.device, ctx.dtype)
    prep = prepare(ctx, rank)
    try:
        y = forward(ctx, prep.module, x)
    except UserCodeError as error:
        return BatchOfOne(error.detail, False, True, tuple(x.shape))
    state = snapshot(prep)
    running_ok = state is None or bool(torch.isfinite(state).all())
    return BatchOfOne("", bool(torch.isfinite(y).all()), running_ok, tuple(x.shape))
