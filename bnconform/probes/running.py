"""Probes of the running statistics: momentum, estimator, buffers, counter, trace."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from bnconform.context import RunContext
from bnconform.probes.common import (
    FAR_MEANS,
    FAR_VARS,
    PLAIN_TENSORS,
    forward,
    held,
    per_channel,
    prepare,
    read,
    readable,
)
from bnconform.reference import batch_statistics

EXPLICIT_MOMENTUM = 0.3  # m != 1 - m, so both conventions are told apart
BATCH_MEANS, BATCH_STDS = [1.0, 2.0, -3.0], [1.0, 2.0, 0.5]
MOVED = 1e-6  # a new-batch weight this small is float32 rounding, not an update


@dataclass(frozen=True)
class Update:
    """One training step from far-away running statistics, solved for the new-batch weight
    separately for running_mean and running_var (PROBING.md 3: one thing at a time)."""

    new_weight: float  # of the batch mean in running_mean; nan when not one weight for all channels
    spread: float  # max - min of the per-channel weights
    var_ratio: float  # stored batch variance / biased batch variance, at the mean's weight
    values_per_channel: int
    var_weight: float = float("nan")  # of the batch quantity in running_var
    var_tracks: str = "other"  # "unbiased" | "biased" | "std" | "other": what running_var blends in
    mean_weights: tuple[float, ...] = ()
    readable: bool = True  # False: after the step a running statistic was not C readable values

    @property
    def moved(self) -> bool:
        """A weight above float32 rounding of the far statistics: a momentum of 1e-5 (eps and
        momentum swapped in F.batch_norm's arguments) moves them, if barely."""
        return any(abs(w) > MOVED for w in (self.new_weight, self.var_weight) if not math.isnan(w))

    @property
    def per_channel(self) -> bool:
        return not math.isnan(self.new_weight) and self.spread <= 1e-3


def one_update(ctx: RunContext, **roles: object) -> Update:
    rank = ctx.primary_rank
    prep = prepare(ctx, rank, running=(FAR_MEANS, FAR_VARS), **roles)
    x = ctx.input_with_stats(rank, BATCH_MEANS, BATCH_STDS, salt=50)
    forward(ctx, prep.module, x)
    r_mean, r_var = read(prep.discovery, prep.module, "running_mean"), read(prep.discovery, prep.module, "running_var")
    c = ctx.channels
    n = ctx.values_per_channel(rank)
    far_m, far_v = per_channel(FAR_MEANS, c), per_channel(FAR_VARS, c)
    if r_mean is None or r_var is None or r_mean.numel() != c or r_var.numel() != c:
        return Update(float("nan"), float("inf"), float("nan"), n, readable=False)
    mean, var_b = batch_statistics(x.double().cpu(), ctx.spec.axes_for_rank(rank), "biased")
    weights = (r_mean - far_m) / (mean.reshape(-1) - far_m)
    w = float(weights.mean())
    spread = float(weights.max() - weights.min())
    ratio = float("nan")
    if abs(w) > 1e-4:  # Keras' default 0.99 leaves the new batch a weight of only 0.01
        ratio = float(((r_var - (1 - w) * far_v) / w / var_b.reshape(-1)).mean())
    var_weight, tracks = var_update(r_var, far_v, var_b.reshape(-1), n)
    return Update(w, spread, ratio, n, var_weight, tracks, tuple(weights.tolist()))


LATER_STEPS = 4


def first_moving_step(ctx: RunContext) -> int | None:
    """The training step (1-based, up to LATER_STEPS) on which a default-built module's running
    statistics first move from far values, the same batch each step; None when none of them does.
    A module that updates on some steps only (every other one, after a warm-up) is not one that
    never updates (PROBING.md: say what was observed)."""
    rank = ctx.primary_rank
    prep = prepare(ctx, rank, running=(FAR_MEANS, FAR_VARS))
    x = ctx.input_with_stats(rank, BATCH_MEANS, BATCH_STDS, salt=50)
    mean, var_b = batch_statistics(x.double().cpu(), ctx.spec.axes_for_rank(rank), "biased")
    # (start, where a full step would take it): a move is a weight above MOVED, as in one_update,
    # so float32 rounding of the far values is not read as a step that moved them.
    blends = {"running_mean": (per_channel(FAR_MEANS, ctx.channels), mean.reshape(-1)),
              "running_var": (per_channel(FAR_VARS, ctx.channels), var_b.reshape(-1))}
    for step in range(1, LATER_STEPS + 1):
        forward(ctx, prep.module, x)
        for role, (start, target) in blends.items():
            now = read(prep.discovery, prep.module, role)
            if now is not None and now.numel() == start.numel() and bool(
                    ((now - start).abs() > MOVED * (target - start).abs()).any()):
                return step
    return None


def var_update(r_var: torch.Tensor, far_v: torch.Tensor, var_b: torch.Tensor, n: int) -> tuple[float, str]:
    """The weight and the batch quantity that explain running_var's move in every channel.

    Channels have different batch variances and different starting values, so only the
    quantity the module really blends in gives one weight for all of them.
    """
    candidates = {
        "unbiased": var_b * n / (n - 1),
        "biased": var_b,
        "std": var_b.sqrt(),
        "unbiased std": (var_b * n / (n - 1)).sqrt(),
    }
    best: tuple[float, str, float] = (float("inf"), "other", float("nan"))
    for name, quantity in candidates.items():
        weights = (r_var - far_v) / (quantity - far_v)
        spread = float(weights.max() - weights.min())
        if spread < best[0]:
            best = (spread, name, float(weights.mean()))
    spread, name, weight = best
    if abs(weight) <= MOVED:
        return weight, "unchanged"
    return (weight, name.replace("unbiased std", "std")) if spread <= VAR_FIT_TOL * abs(weight) else (weight, "other")


VAR_FIT_TOL = 1e-3


@dataclass(frozen=True)
class MomentumObservation:
    default: Update
    explicit: Update | None  # None: the constructor takes no momentum
    expected_default: float  # new-batch weights the spec implies
    expected_explicit: float


def momentum(ctx: RunContext) -> MomentumObservation:
    spec = ctx.spec
    explicit = one_update(ctx, momentum=EXPLICIT_MOMENTUM) if ctx.builder.accepts("momentum") else None
    return MomentumObservation(
        one_update(ctx), explicit, first_step_weight(ctx), spec.new_weight(EXPLICIT_MOMENTUM)
    )


def first_step_weight(ctx: RunContext) -> float:
    """The new batch's weight in the first update of a default-built module (1 for a cumulative average)."""
    w = ctx.behaviour().new_weight
    return 1.0 if w is None else w


def running_layout(ctx: RunContext) -> str:
    """"" when running_mean and running_var hold one value per channel, else what they hold."""
    from bnconform.probes.basics import found_tensors

    found, module = ctx.probe(found_tensors), ctx.build()
    sizes = {role: found.get(module, role) for role in ("running_mean", "running_var")}
    odd = {role: tuple(t.shape) for role, t in sizes.items() if t is not None and t.numel() != ctx.channels}
    if not odd:
        return ""
    held = ", ".join(f"{role} has shape {shape}" for role, shape in odd.items())
    return f"the running statistics are not per channel ({held}; C = {ctx.channels})"


@dataclass(frozen=True)
class Cumulative:
    weights: tuple[float, ...]  # the new batch's weight in running_mean at each step
    error: str = ""  # why momentum=None could not be used


def cumulative(ctx: RunContext) -> Cumulative:
    """Three training steps with momentum=None from far-away running statistics."""
    from bnconform.errors import UserCodeError

    try:
        prep = prepare(ctx, running=(FAR_MEANS, FAR_VARS), momentum=None)
        weights = []
        for step in range(3):
            before = read(prep.discovery, prep.module, "running_mean")
            x = ctx.input_with_stats(ctx.primary_rank, [m + step for m in BATCH_MEANS], BATCH_STDS, salt=55 + step)
            before = None if before is None else before.clone()  # read() may alias the buffer
            forward(ctx, prep.module, x)
            after = read(prep.discovery, prep.module, "running_mean")
            unreadable = [when for when, t in (("before", before), ("after", after))
                          if t is None or t.numel() != ctx.channels]
            if unreadable:
                return Cumulative(tuple(weights), f"the running mean is not {ctx.channels} readable values "
                                                  f"{unreadable[0]} step {step + 1}")
            mean, _ = batch_statistics(x.double().cpu(), ctx.spec.axes_for_rank(x.dim()), "biased")
            weights.append(float(((after - before) / (mean.reshape(-1) - before)).mean()))
    except UserCodeError as error:
        return Cumulative((), f"raised {error.detail}")
    return Cumulative(tuple(weights))


@dataclass(frozen=True)
class BufferObservation:
    init_values: dict[str, list[float]]
    shapes: dict[str, list[str]]  # role -> ["(3,) at init", "(1, 3) after a rank-2 step", ...]
    bad_shape: bool
    history: list[str]  # roles given autograd history (a grad_fn) by a training step
    kinds: dict[str, str]
    # Buffers or attributes that require grad, though no step gave them history: created so (a
    # leaf, or the .to() copy of one, which has a grad_fn of its own). A backward through an eval
    # forward reaches them. A Parameter requires grad by being one: running-stats-not-buffers.
    requiring_grad: list[str] = field(default_factory=list)


def buffers(ctx: RunContext) -> BufferObservation:
    """Shapes, values and autograd history of the running statistics across ranks."""
    roles = ("running_mean", "running_var")
    shapes: dict[str, list[str]] = {r: [] for r in roles}
    history: set[str] = set()
    requiring: set[str] = set()
    bad = False
    init_values, kinds = {}, {}
    def seen(role: str, when: str) -> torch.Tensor | None:
        """The role's tensor, its shape recorded; None (recorded as such) when it is gone or is not
        a plain tensor (a subclass's attributes are user code)."""
        nonlocal bad
        t = prep.discovery.get(prep.module, role)
        shapes[role].append(f"{held(t)} {when}")
        plain = t if type(t) in PLAIN_TENSORS else None
        bad |= plain is None or tuple(plain.shape) != (ctx.channels,)
        return plain

    for rank in ctx.probe(_accepted_ranks):
        prep = prepare(ctx, rank)
        x = ctx.input_with_stats(rank, BATCH_MEANS, BATCH_STDS, salt=60 + rank).requires_grad_(True)
        required_before = set()
        for role in roles:
            t = seen(role, "at init")
            values = readable(t)
            if values is not None:
                init_values.setdefault(role, values.tolist())
            kinds[role] = prep.discovery.kind(role)
            if t is not None and t.requires_grad:
                required_before.add(role)
        forward(ctx, prep.module, x)
        for role in roles:
            t = seen(role, f"after a rank-{rank} step")
            if t is None or not t.requires_grad:
                continue
            if t.grad_fn is not None and role not in required_before:
                history.add(role)
            elif kinds[role] != "parameter":
                requiring.add(role)
    return BufferObservation(init_values, shapes, bad, sorted(history), kinds, sorted(requiring - history))


def _accepted_ranks(ctx: RunContext) -> tuple[int, ...]:
    from bnconform.probes.basics import rank_support

    return ctx.probe(rank_support).accepted


@dataclass(frozen=True)
class Counter:
    value: float | None  # None: no counter found
    expected: int
    steps: str
    kind: str = "tensor"  # or "int"/"float": a plain Python number named num_batches_tracked


def counter(ctx: RunContext) -> Counter:
    """num_batches_tracked after a train step, a train step under no_grad and an eval step."""
    prep = prepare(ctx)
    x = ctx.input_with_stats(ctx.primary_rank, BATCH_MEANS, BATCH_STDS, salt=70)
    forward(ctx, prep.module, x)
    forward(ctx, prep.module, x, grad=False)
    forward(ctx, prep.module, x, train=False)
    expected = 2 if ctx.spec.update_under_no_grad else 1
    value = read(prep.discovery, prep.module, "num_batches_tracked")
    steps = "one train step, one train step under no_grad, one eval step"
    if value is None:  # not a tensor; a plain number still counts, it is only not saved
        plain = getattr(prep.module, "num_batches_tracked", None)
        if isinstance(plain, int | float) and not isinstance(plain, bool) and math.isfinite(plain):
            return Counter(float(plain), expected, steps, kind=type(plain).__name__)
    return Counter(None if value is None else float(value.sum()), expected, steps)


@dataclass(frozen=True)
class Trace:
    steps: list[int]
    mean: list[float]
    var: list[float]
    batch_means: list[float] = field(default_factory=list)
    batch_vars: list[float] = field(default_factory=list)


TRACE_STEPS = 20


def trace(ctx: RunContext) -> Trace:
    """Channel 0 of the running statistics over training steps on a fixed distribution."""
    prep = prepare(ctx)
    trace = Trace([0], [], [])
    if not record(trace, prep):
        return Trace([], [], [])
    noise = torch.randn(TRACE_STEPS + 1, 2, generator=ctx.generator(999), dtype=torch.float64)
    for step in range(1, TRACE_STEPS + 1):
        # Batches scatter around mean 2 and std 1.5, so a running mean that follows the last
        # batch (inverted momentum) looks as jumpy as the batches themselves.
        mean_0, std_0 = 2.0 + 0.8 * float(noise[step, 0]), 1.5 * math.exp(0.3 * float(noise[step, 1]))
        x = ctx.input_with_stats(ctx.primary_rank, [mean_0, 0.0, 0.0], [std_0, 1.0, 1.0], salt=1000 + step)
        forward(ctx, prep.module, x)
        mean, var = batch_statistics(x.double().cpu(), ctx.spec.axes_for_rank(x.dim()), ctx.spec.running_var_estimator)
        if not record(trace, prep):
            break  # the class dropped or emptied a statistic: the trace ends where it was readable
        trace.steps.append(step)
        trace.batch_means.append(float(mean.reshape(-1)[0]))
        trace.batch_vars.append(float(var.reshape(-1)[0]))
    return trace


def record(trace: Trace, prep: object) -> bool:
    """Append channel 0 of both statistics; False (nothing appended) when either is unreadable."""
    mean = read(prep.discovery, prep.module, "running_mean")
    var = read(prep.discovery, prep.module, "running_var")
    if mean is None or var is None or mean.numel() == 0 or var.numel() == 0:
        return False
    trace.mean.append(float(mean.reshape(-1)[0]))
    trace.var.append(float(var.reshape(-1)[0]))
    return True


def snapshot(prep: object) -> torch.Tensor | None:
    mean = read(prep.discovery, prep.module, "running_mean")
    var = read(prep.discovery, prep.module, "running_var")
    return None if mean is None or var is None else torch.cat([mean, var])
