"""Probes of the training-mode normalization: which axes, which variance, which eps."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from bnconform.context import RunContext
from bnconform.probes.common import FAR_MEANS, FAR_VARS, Prepared, forward, per_channel, prepare
from bnconform.reference import Behaviour, batch_statistics, count_over, train_forward

STRUCTURE_TOL = 0.005  # structural hypotheses differ by >= 4 % on these inputs
FIT_TOL = 1e-3  # residual of a per-group affine fit that still counts as exact


@dataclass(frozen=True)
class Fit:
    """y = a * x + b per channel: the statistics the module really normalized with."""

    scale: torch.Tensor  # 1 / a: the observed normalization denominator
    shift: torch.Tensor  # -b / a: the observed mean
    residual: float


def fit_per_channel(x: torch.Tensor, y: torch.Tensor, channel_axis: int) -> Fit:
    """Least squares per channel, in float64 on centred inputs (robust to large means)."""
    xs = x.detach().double().cpu().movedim(channel_axis, 0).reshape(x.shape[channel_axis], -1)
    ys = y.detach().double().cpu().movedim(channel_axis, 0).reshape(y.shape[channel_axis], -1)
    xc = xs - xs.mean(dim=1, keepdim=True)
    a = (xc * ys).sum(dim=1) / xc.pow(2).sum(dim=1)
    b = ys.mean(dim=1) - a * xs.mean(dim=1)
    spread = (ys - ys.mean(dim=1, keepdim=True)).norm().clamp_min(1e-300)
    residual = float((ys - a[:, None] * xs - b[:, None]).norm() / spread)
    return Fit(1 / a, -b / a, residual)


@dataclass(frozen=True)
class Structure:
    rank: int
    axes: tuple[int, ...] | None  # None: no hypothesis explains the output
    estimator: str  # "biased" | "unbiased" | "other" | "n/a"
    source: str  # "batch" | "running" | "other" | "constant" (the output does not depend on the input)
    ratio: float  # observed variance / biased batch variance
    values_per_channel: int
    shift: tuple[float, ...] = ()  # the per-channel mean the module normalized with
    scale: tuple[float, ...] = ()  # the per-channel denominator it divided by
    activation: str = ""  # "relu" when a fused ReLU clips the normalized output
    batch_mean: tuple[float, ...] = ()


WARMUP = ((4.0, -3.0, 1.5), (-2.0, 5.0, 0.5))  # batches before the measured one, far from it
# Running statistics for the measured step: half a batch std from the batch's means and twice
# its std, so "running" and "batch" stay apart exactly, while a class that normalizes with
# them (frozen) still sends enough values through a fused ReLU to be measured.
STRUCTURE_RUNNING = ([1.5, -1.0, 3.75], [4.0, 16.0, 9.0])


def structure(ctx: RunContext, rank: int) -> Structure:
    """Which statistics normalize a training batch (gamma=1, beta=0, running stats far away).

    Two warm-up steps come first: a module that normalizes with batch statistics only on its
    first step (an EMA seeded by the first batch, or running statistics once initialised) is
    caught on the measured third step (PROBING.md 6).
    """
    prep = prepare(ctx, rank, gamma=[1.0], beta=[0.0])
    for i, means in enumerate(WARMUP):
        forward(ctx, prep.module, ctx.input_with_stats(rank, list(means), [2.0, 0.5, 1.0], salt=25 + 2 * rank + i))
    prep = reset_running(ctx, prep)
    x = ctx.input_with_stats(rank, [1.0, -2.0, 3.0], [1.0, 2.0, 1.5], salt=20 + rank)
    y = forward(ctx, prep.module, x)
    spec_axes = ctx.spec.axes_for_rank(rank)
    n = count_over(x, spec_axes)
    fit, activation = fit_with_activation(x, y, ctx.spec.channel_axis)
    if not bool(torch.isfinite(fit.scale).all() and torch.isfinite(fit.shift).all()):
        return Structure(rank, spec_axes, "n/a", "constant", float("nan"), n)  # y ignores x: nothing to solve
    if fit.residual > FIT_TOL:
        return Structure(rank, search_axes(ctx, x, y), "n/a", "other", float("nan"), n)
    mean, var_b = batch_statistics(x.double().cpu(), spec_axes, "biased")
    source = statistics_source(fit, mean.reshape(-1), len(fit.shift))
    if source == "other":
        # Per channel affine, but not with this channel's statistics: statistics over other
        # axes (one global mean, say) explain that before "other statistics" does.
        axes = search_axes(ctx, x, y)
        if axes is not None and axes != spec_axes:
            return Structure(rank, axes, "n/a", "batch", float("nan"), count_over(x, axes))
    ratio = float(((fit.scale.pow(2) - ctx.spec.eps) / var_b.reshape(-1)).mean())
    estimator = nearest_estimator(ratio, n) if source == "batch" else "n/a"
    return Structure(
        rank, spec_axes, estimator, source, ratio, n,
        tuple(fit.shift.tolist()), tuple(fit.scale.tolist()), activation, tuple(mean.reshape(-1).tolist()),
    )


def reset_running(ctx: RunContext, prep: Prepared) -> Prepared:
    """Running statistics far from every batch again, so "running" and "batch" stay apart."""
    found = prep.discovery
    for name, values in zip(("running_mean", "running_var"), STRUCTURE_RUNNING, strict=True):
        if found.has(name):  # each on its own: a mean-only BatchNorm keeps no running_var
            try:
                found.set(prep.module, name, per_channel(values, ctx.channels))
            except (KeyError, ValueError, RuntimeError):
                pass  # the statistic changed shape or kind in the warm-up: measured as it is
    return prep


def fit_with_activation(x: torch.Tensor, y: torch.Tensor, channel_axis: int) -> tuple[Fit, str]:
    """The per-channel affine fit; when it fails and the output is clipped at exactly 0, the
    fit of the unclipped part (a fused BatchNorm + ReLU normalizes correctly, then clips)."""
    fit = fit_per_channel(x, y, channel_axis)
    if fit.residual <= FIT_TOL:
        return fit, ""
    clipped = fit_clipped(x, y, channel_axis)
    return (clipped, "relu") if clipped is not None else (fit, "")


def fit_clipped(x: torch.Tensor, y: torch.Tensor, channel_axis: int) -> Fit | None:
    xs = x.detach().double().cpu().movedim(channel_axis, 0).reshape(x.shape[channel_axis], -1)
    ys = y.detach().double().cpu().movedim(channel_axis, 0).reshape(y.shape[channel_axis], -1)
    if bool((ys < 0).any()) or not bool((ys == 0).any()):
        return None
    scales, shifts, worst = [], [], 0.0
    for xc, yc in zip(xs, ys, strict=True):
        keep = yc > 0
        if int(keep.sum()) < 3:
            return None
        part = fit_per_channel(xc[keep][None], yc[keep][None], 0)
        predicted = (xc - part.shift) / part.scale
        if bool((predicted[~keep] > 1e-9).any()):
            return None  # clipped where the affine part is positive: not a ReLU
        scales.append(part.scale)
        shifts.append(part.shift)
        worst = max(worst, part.residual)
    return Fit(torch.cat(scales), torch.cat(shifts), worst)


def statistics_source(fit: Fit, batch_mean: torch.Tensor, channels: int) -> str:
    """Batch mean, or the running mean (before or after this step's update: a blend of both)."""
    far = per_channel(STRUCTURE_RUNNING[0], channels)
    if torch.allclose(fit.shift, batch_mean, rtol=1e-3, atol=1e-3):
        return "batch"
    blend = (fit.shift - far) / (batch_mean - far)
    if float(blend.max() - blend.min()) < 1e-3 and -1e-3 <= float(blend.mean()) < 0.999:
        return "running"
    return "other"


def nearest_estimator(ratio: float, n: int) -> str:
    for name, target in (("biased", 1.0), ("unbiased", n / (n - 1))):
        if abs(ratio / target - 1) < STRUCTURE_TOL:
            return name
    return "other"


def search_axes(ctx: RunContext, x: torch.Tensor, y: torch.Tensor) -> tuple[int, ...] | None:
    """The reduction axes (any subset, either estimator) whose batch statistics reproduce y."""
    xr = x.detach().double().cpu()
    for size in range(xr.dim(), 0, -1):
        for axes in itertools.combinations(range(xr.dim()), size):
            for estimator in ("biased", "unbiased"):
                if predicts(ctx, xr, y, axes, estimator):
                    return axes
    return None


def predicts(ctx: RunContext, x: torch.Tensor, y: torch.Tensor, axes: tuple[int, ...], estimator: str) -> bool:
    if count_over(x, axes) < 2:
        return False
    behaviour = Behaviour(ctx.spec.channel_axis, {x.dim(): axes}, estimator, ctx.spec.eps)
    expected, _ = train_forward(behaviour, x, None)
    error = (y.detach().double().cpu() - expected).abs().max() / expected.abs().max()
    return bool(error <= STRUCTURE_TOL)


@dataclass(frozen=True)
class EpsObservation:
    placement: str  # "inside-sqrt" | "outside-sqrt" | "ignored" | "other" | "untested"
    explicit_value: float  # eps implied by the explicit construction (inside-sqrt formula)
    default_value: float  # eps implied by the default construction, by the observed placement
    requested: float
    default_placement: str  # the placement that explains the default construction


EXPLICIT_EPS = 0.5  # large enough that placement and use are unmistakable at variance ~1


def eps_behaviour(ctx: RunContext, estimator: str) -> EpsObservation:
    rank = ctx.primary_rank
    placement, explicit = "untested", float("nan")
    if ctx.builder.accepts("eps"):
        placement, explicit = explicit_eps(ctx, rank, estimator)
    default, default_placement = default_eps(ctx, rank, estimator, placement)
    return EpsObservation(placement, explicit, default, EXPLICIT_EPS, default_placement)


def observed_scale(
    ctx: RunContext, rank: int, stds: list[float], salt: int, **roles: object
) -> tuple[torch.Tensor, torch.Tensor]:
    if ctx.spec.train_uses == "running":
        return scale_from_running(ctx, rank, stds, salt, **roles)
    prep = prepare(ctx, rank, gamma=[1.0], beta=[0.0], running=(FAR_MEANS, FAR_VARS), **roles)
    x = ctx.input_with_stats(rank, [0.1, -0.2, 0.3], stds, salt=salt)
    fit = fit_per_channel(x, forward(ctx, prep.module, x), ctx.spec.channel_axis)
    _, var_b = batch_statistics(x.double().cpu(), ctx.spec.axes_for_rank(rank), "biased")
    return fit.scale, var_b.reshape(-1)


def scale_from_running(
    ctx: RunContext, rank: int, stds: list[float], salt: int, **roles: object
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen statistics (the spec normalizes with running ones in training too): the variance
    is the running_var we set, so the denominator gives eps directly."""
    variances = [s * s for s in stds]
    prep = prepare(ctx, rank, gamma=[1.0], beta=[0.0], running=([0.1, -0.2, 0.3], variances), **roles)
    x = ctx.input_with_stats(rank, [0.5, -1.0, 2.0], [1.0, 2.0, 0.5], salt=salt)
    fit = fit_per_channel(x, forward(ctx, prep.module, x), ctx.spec.channel_axis)
    return fit.scale, per_channel(variances, ctx.channels)


def variance_used(var_b: torch.Tensor, estimator: str, n: int) -> torch.Tensor:
    return var_b * n / (n - 1) if estimator == "unbiased" else var_b


def explicit_eps(ctx: RunContext, rank: int, estimator: str) -> tuple[str, float]:
    scale, var_b = observed_scale(ctx, rank, [1.0, 1.5, 0.8], 30, eps=EXPLICIT_EPS)
    var = variance_used(var_b, estimator, ctx.values_per_channel(rank))
    inside = float((scale.pow(2) - var).mean())
    outside = float((scale - var.sqrt()).mean())
    if abs(inside - EXPLICIT_EPS) < 0.02:
        return "inside-sqrt", inside
    if abs(outside - EXPLICIT_EPS) < 0.02:
        return "outside-sqrt", inside
    if abs(inside) < 0.05:
        return "ignored", inside
    return ("ignored" if adds_the_same_eps(ctx, rank, estimator, inside) else "other"), inside


SECOND_EPS = 0.25


def adds_the_same_eps(ctx: RunContext, rank: int, estimator: str, first: float) -> bool:
    """A module given another eps adds the same large amount again: its own eps, whatever it is
    given (a hard-coded 0.1, or its momentum where eps and momentum are swapped)."""
    scale, var_b = observed_scale(ctx, rank, [1.0, 1.5, 0.8], 30, eps=SECOND_EPS)
    again = float((scale.pow(2) - variance_used(var_b, estimator, ctx.values_per_channel(rank))).mean())
    return abs(again - first) < 0.02 and abs(again - SECOND_EPS) >= 0.02


def default_eps(ctx: RunContext, rank: int, estimator: str, placement: str) -> tuple[float, str]:
    """The eps a default-built module adds, measured with variances comparable to the spec's eps.

    Channels get variances of 0.25, 1 and 4 times eps: the placement formula that gives the
    same eps in every channel is the one the module uses (needed when eps cannot be passed).
    """
    stds = [(ctx.spec.eps * f) ** 0.5 for f in (0.25, 1.0, 4.0)]
    scale, var_b = observed_scale(ctx, rank, stds, 31)
    var = variance_used(var_b, estimator, ctx.values_per_channel(rank))
    implied = {"inside-sqrt": scale.pow(2) - var, "outside-sqrt": scale - var.sqrt()}
    if placement not in implied:
        tiny = all(float(v.abs().mean()) < 0.01 * ctx.spec.eps for v in implied.values())
        placement = ctx.spec.eps_placement if tiny else min(implied, key=lambda name: spread(implied[name]))
    return float(implied[placement].mean()), placement


def spread(values: torch.Tensor) -> float:
    return float((values.max() - values.min()) / values.abs().mean().clamp_min(1e-300))


@dataclass(frozen=True)
class Stability:
    relative_error: float  # of the variance a float32 module normalized with
    mean_offset: float


def stability(ctx: RunContext, estimator: str, eps: float | None = None, placement: str = "inside-sqrt") -> Stability:
    """Large mean, small spread, float32: catches E[x^2]-E[x]^2 cancellation. `eps` and
    `placement`: the module's own, where measured (the spec's eps otherwise), so that another
    eps is not read as a wrong variance."""
    rank, offset = ctx.primary_rank, 3000.0
    saved = ctx.dtype
    ctx.dtype = torch.float32
    try:
        prep = prepare(ctx, rank, gamma=[1.0], beta=[0.0])
        x = ctx.input_with_stats(rank, [offset, -offset * 0.7, offset * 1.3], [1.0, 0.5, 2.0], salt=40, batch=4)
        y = forward(ctx, prep.module, x)
    finally:
        ctx.dtype = saved
    fit, _ = fit_with_activation(x, y, ctx.spec.channel_axis)
    _, var_b = batch_statistics(x.double().cpu(), ctx.spec.axes_for_rank(rank), "biased")
    true_var = variance_used(var_b.reshape(-1), estimator, count_over(x, ctx.spec.axes_for_rank(rank)))
    eps = ctx.spec.eps if eps is None or eps != eps else eps
    observed = (fit.scale - eps).pow(2) if placement == "outside-sqrt" else fit.scale.pow(2) - eps
    error = float(((observed - true_var).abs() / true_var).max())
    return Stability(error if error == error else float("inf"), offset)


# Below this share of the squared denominator following the variance, the denominator does not
# follow it (a module dividing by its batch std has about 1; eps = 100 still 0.02 here).
VARIANCE_SHARE_MIN = 0.01


def variance_share(scale: torch.Tensor, var_b: torch.Tensor) -> float:
    """The part of the squared denominator that grows with the channel's batch variance, from the
    slope across channels: about 1 when the module divides by its batch std (var / (var + eps),
    whatever a stray output factor), 0 when the denominator does not depend on the variance."""
    spread = var_b - var_b.mean()
    squared = scale.pow(2)
    slope = (spread * (squared - squared.mean())).sum() / spread.pow(2).sum()
    return float(slope * var_b.mean() / squared.mean())


def denominator_variance_share(ctx: RunContext, rank: int) -> float:
    """variance_share() of a training batch whose channel variances differ (1, 4 and 2.25), the
    running statistics far away; NaN under a spec that normalizes training with running ones."""
    if ctx.spec.train_uses == "running":
        return float("nan")
    prep = prepare(ctx, rank, gamma=[1.0], beta=[0.0], running=(FAR_MEANS, FAR_VARS))
    x = ctx.input_with_stats(rank, [0.1, -0.2, 0.3], [1.0, 2.0, 1.5], salt=32)
    fit, _ = fit_with_activation(x, forward(ctx, prep.module, x), ctx.spec.channel_axis)
    _, var_b = batch_statistics(x.double().cpu(), ctx.spec.axes_for_rank(rank), "biased")
    return variance_share(fit.scale, var_b.reshape(-1))


def ignores_variance(share: float) -> bool:
    """The denominator does not follow the channel's variance, so no variance or eps can be read
    from it (NaN, one channel or not measured: nothing to compare, not flagged)."""
    return share < VARIANCE_SHARE_MIN


def denominator_ignores_variance(ctx: RunContext) -> bool:
    """ignores_variance() of the primary rank's measured share (one place for checks and probes)."""
    return ignores_variance(ctx.probe(denominator_variance_share, ctx.primary_rank))


def eval_eps_matches(used: float, requested: float) -> bool:
    """The eps eval adds is the one training was given (NaN: eval not read, nothing to compare)."""
    return math.isnan(used) or abs(used - requested) < 0.02


EVAL_RUNNING = ([0.1, -0.2, 0.3], [1.0, 2.25, 0.64])


def eval_eps(ctx: RunContext, placement: str) -> float:
    """The eps an eval-mode forward of a module built with EXPLICIT_EPS adds to its running
    variance, read with the training `placement`; NaN when eval does not normalize with the
    running statistics set here (batch statistics in eval are another check's finding)."""
    rank = ctx.primary_rank
    means, variances = EVAL_RUNNING
    prep = prepare(ctx, rank, gamma=[1.0], beta=[0.0], running=EVAL_RUNNING, eps=EXPLICIT_EPS)
    x = ctx.input_with_stats(rank, [0.5, -1.0, 2.0], [1.0, 2.0, 0.5], salt=34)
    fit = fit_per_channel(x, forward(ctx, prep.module, x, train=False), ctx.spec.channel_axis)
    c = ctx.channels
    if fit.residual > 1e-6 or float((fit.shift - per_channel(means, c)).abs().max()) > 1e-6:
        return float("nan")
    var = per_channel(variances, c)
    implied = fit.scale - var.sqrt() if placement == "outside-sqrt" else fit.scale.pow(2) - var
    return float(implied.mean()) if float(implied.max() - implied.min()) <= 1e-3 else float("nan")
