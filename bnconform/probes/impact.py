"""What one deviation costs: the spec's reference with only that deviation put in, against the
spec's own, over a few training steps and one eval step.

Computed from the measured quantity alone (the new-batch weight, the eps, the estimator, the
axes), never from the class's whole output, so a finding's impact is that finding's and not
whatever else the class gets wrong (PROBING.md 7). Orders the report: among findings of one
severity, the costlier comes first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from bnconform.context import RunContext, per_channel
from bnconform.errors import UserCodeError
from bnconform.probes import running, statistics
from bnconform.probes.common import relative_error
from bnconform.reference import Behaviour, RunningState, eval_forward, train_forward

STEPS = 5


@dataclass(frozen=True)
class Deviation:
    behaviour: Behaviour
    where: str  # "train" | "eval": which outputs the deviation changes


def momentum_weight(ctx: RunContext) -> Deviation | None:
    """The reference has one weight for both statistics: a class that blends running_var with
    another weight than running_mean has no modelled impact (none is claimed, not 0%)."""
    update = ctx.probe(running.momentum).default
    w, var_w = update.new_weight, update.var_weight
    if math.isnan(w) or (not math.isnan(var_w) and abs(var_w - w) > 1e-3):
        return None
    return Deviation(ctx.behaviour().but(new_weight=w), "eval")


def running_estimator(ctx: RunContext) -> Deviation | None:
    tracks = ctx.probe(running.momentum).default.var_tracks
    if tracks not in ("biased", "unbiased"):
        return None
    return Deviation(ctx.behaviour().but(running_var_estimator=tracks), "eval")


def structure_change(ctx: RunContext) -> Deviation | None:
    s = ctx.probe(statistics.structure, ctx.primary_rank)
    behaviour = ctx.behaviour()
    if s.axes is not None and s.axes != behaviour.reduction_axes.get(s.rank):
        return Deviation(behaviour.but(reduction_axes={**behaviour.reduction_axes, s.rank: s.axes}), "train")
    if s.source == "running":
        return Deviation(behaviour.but(train_uses="running"), "train")
    if s.estimator in ("biased", "unbiased") and s.estimator != behaviour.norm_variance:
        return Deviation(behaviour.but(norm_variance=s.estimator), "train")
    return None


def eps_change(ctx: RunContext) -> Deviation | None:
    behaviour = ctx.behaviour()
    obs = ctx.probe(statistics.eps_behaviour, behaviour.norm_variance)
    if not math.isfinite(obs.default_value):
        return None
    placement = obs.default_placement if obs.default_placement in ("inside-sqrt", "outside-sqrt") else None
    return Deviation(behaviour.but(eps=max(obs.default_value, 0.0),
                                   eps_placement=placement or behaviour.eps_placement), "train")


DEVIATIONS: dict[str, Callable[[RunContext], Deviation | None]] = {
    "momentum-inverted": momentum_weight,
    "momentum-default": momentum_weight,
    "running-var-estimator": running_estimator,
    "reduction-axes": structure_change,
    "train-uses-running-stats": structure_change,
    "norm-variance-estimator": structure_change,
    "eps-default": eps_change,
    "eps-placement": eps_change,
}


def impact(ctx: RunContext, code: str) -> tuple[float, str] | None:
    """(relative output error, which outputs) of the finding `code`'s deviation alone."""
    measure = DEVIATIONS.get(code)
    try:
        deviation = measure(ctx) if measure else None
    except UserCodeError:
        return None
    if deviation is None:
        return None
    return replay(ctx, deviation), deviation.where


def replay(ctx: RunContext, deviation: Deviation) -> float:
    """STEPS training steps and one eval step of the spec and of the deviation, from the spec's
    initial state on the same inputs; the relative error of the outputs it changes."""
    spec, c, rank = ctx.behaviour(), ctx.channels, ctx.primary_rank
    start = RunningState(per_channel([ctx.spec.running_mean_init], c), per_channel([ctx.spec.running_var_init], c))
    # Training outputs do not depend on the running update (except with train_uses="running");
    # per-sample axes have no per-channel update at all.
    tracked = deviation.where == "eval" or deviation.behaviour.train_uses == "running"
    states = [start.clone(), start.clone()] if tracked else [None, None]
    train_error = 0.0
    for step in range(STEPS):
        x = ctx.input_with_stats(rank, [1.0 + step, -2.0, 0.5 * step], [1.5, 0.5 + step / 4, 2.0], salt=950 + step)
        xr = x.double().cpu()
        outputs = []
        for i, behaviour in enumerate((spec, deviation.behaviour)):
            y, states[i] = train_forward(behaviour, xr, states[i])
            outputs.append(y)
        train_error = max(train_error, relative_error(outputs[1], outputs[0]))
    if deviation.where == "train":
        return train_error
    x = ctx.input_with_stats(rank, [2.0, -1.0, 1.0], [1.0, 1.0, 1.0], salt=960).double().cpu()
    expected, observed = (eval_forward(b, x, s) for b, s in zip((spec, deviation.behaviour), states, strict=True))
    return relative_error(observed, expected) if torch.isfinite(observed).all() else math.inf
