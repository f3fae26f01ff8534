"""What the implementation does, in the spec's vocabulary, and which shipped spec it resembles.

Row keys are finding codes, so "behaves like keras except running-var-estimator" names the
same thing a finding, a waiver and the fingerprint table do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bnconform.construct import DEFAULT
from bnconform.context import RunContext
from bnconform.errors import UserCodeError
from bnconform.probes import basics, modes, running, statistics
from bnconform.spec import Spec, load_builtin_specs

UNKNOWN = "unknown"
NOT_APPLICABLE = "n/a"  # observed where the class has no such behaviour (no batch variance to estimate)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    expected: str
    observed: str
    comparable: bool = True  # layout-independent: used to find the closest spec
    judged: bool | None = None  # set where the rule is not string equality (rank groups)

    @property
    def verdict(self) -> str:
        if self.observed == UNKNOWN:
            return "unknown"
        if self.judged is not None:
            return "matches" if self.judged else "differs"
        return "matches" if same(self.expected, self.observed) else "differs"


def same(expected: str, observed: str) -> bool:
    """Numbers within 10% of each other. Relative only: eps values are all far below any absolute
    tolerance (Keras' 1e-3 is not PyTorch's 1e-5, nor 1e-21 any eps at all)."""
    try:
        return math.isclose(float(expected), float(observed), rel_tol=0.1, abs_tol=1e-12)
    except ValueError:
        return expected == observed


def cached(ctx: RunContext, fn: Callable[..., Any], *args: Any) -> Any:
    """A probe's result only if some check already ran it; the fingerprint never drives code."""
    if (fn, args) not in ctx._cache:  # noqa: SLF001 - the context owns the cache; read-only here
        return None
    try:
        return ctx.probe(fn, *args)
    except UserCodeError:
        return None


def expected_values(spec: Spec) -> dict[str, str]:
    values = {
        "norm-variance-estimator": spec.norm_variance,
        "eps-placement": spec.eps_placement,
        "eps-default": f"{spec.eps:g}",
        "eps-ignored": "in training and eval" if spec.eval_uses == "running" else "in training",
        "momentum-default": f"{spec.new_weight(spec.momentum_default):.4g}",
        "momentum-inverted": spec.momentum_convention,
        "running-var-estimator": spec.running_var_estimator,
        "running-stats-init": f"mean {spec.running_mean_init:g}, var {spec.running_var_init:g}",
        "train-uses-running-stats": spec.train_uses,
        "eval-uses-batch-stats": spec.eval_uses,
        "eval-updates-running-stats": "yes" if spec.eval_updates_running_stats else "no",
        "mode-follows-grad": "module.training",
        "num-batches-tracked": "yes" if spec.num_batches_tracked else "no",
        "batch-size-one": spec.batch_of_one,
    }
    if spec.train_uses == "running":  # frozen statistics: no batch variance is normalized with or mixed in
        del values["norm-variance-estimator"], values["running-var-estimator"]
    return values


LABELS = {
    "reduction-axes": "reduction axes (preferred rank)",
    "input-rank-unsupported": "input ranks accepted",
    "norm-variance-estimator": "variance used to normalize",
    "eps-placement": "eps placement",
    "eps-default": "default eps",
    "eps-ignored": "constructor's eps used",
    "momentum-default": "new-batch weight, default construction",
    "momentum-inverted": "momentum convention (constructor value)",
    "running-var-estimator": "running variance estimator",
    "running-stats-init": "initial running statistics",
    "train-uses-running-stats": "statistics used in training",
    "eval-uses-batch-stats": "statistics used in eval",
    "eval-updates-running-stats": "eval updates running statistics",
    "mode-follows-grad": "mode switch follows",
    "num-batches-tracked": "counts batches (num_batches_tracked)",
    "batch-size-one": "one value per channel in training",
}


def observed_values(ctx: RunContext) -> dict[str, str]:
    observed: dict[str, str] = {}
    from bnconform.checks.momentum import unmeasurable as momentum_unmeasurable
    from bnconform.checks.normalization import unmeasurable as normalization_unmeasurable

    frozen = ctx.spec.train_uses == "running"  # no batch variance and no update to describe
    structure = cached(ctx, statistics.structure, ctx.primary_rank)
    if structure is not None and structure.axes == ctx.spec.axes_for_rank(ctx.primary_rank):
        # Estimator and source are only meaningful once the reduction is the spec's.
        if not frozen:
            observed["norm-variance-estimator"] = structure.estimator
        observed["train-uses-running-stats"] = structure.source
    # The same preconditions as the checks: a number solved under a model that does not hold
    # (statistics not per channel, a fused activation hiding the variance) is not shown.
    measurable = structure is not None and not structure.activation and not safely(normalization_unmeasurable, ctx)
    for estimator in ("biased", "unbiased"):
        eps = cached(ctx, statistics.eps_behaviour, estimator)
        if eps is not None and measurable:
            observed["eps-placement"] = eps.placement if eps.placement != "untested" else eps.default_placement
            observed["eps-default"] = f"{eps.default_value:.3g}"
            observed.update(eps_use(ctx, eps))
    momentum = cached(ctx, running.momentum)
    if momentum is not None and not momentum_unmeasurable(momentum.default):
        observed.update(momentum_values(momentum))
        if ctx.builder.pinned("momentum") is not DEFAULT:  # built with a given momentum: no default seen
            observed.pop("momentum-default", None)
    if frozen:
        observed.pop("running-var-estimator", None)
    buffers = cached(ctx, running.buffers)
    if buffers is not None and buffers.init_values:
        mean, var = buffers.init_values["running_mean"], buffers.init_values["running_var"]
        observed["running-stats-init"] = f"mean {uniform(mean)}, var {uniform(var)}"
    clipped = structure is not None and bool(structure.activation)
    observed.update(mode_values(cached(ctx, modes.modes), clipped))
    counter = cached(ctx, running.counter)
    if counter is not None:
        observed["num-batches-tracked"] = (
            "no"
            if counter.value is None
            else ("yes" if counter.value == counter.expected else f"counts {counter.value:g}")
            + ("" if counter.kind == "tensor" else f" (a Python {counter.kind}, not a buffer)")
        )
    one = cached(ctx, modes.batch_of_one)
    if one is not None:
        observed["batch-size-one"] = (
            "error" if one.raised else ("allowed" if one.output_finite and one.running_finite else "NaN")
        )
    return observed


def eps_use(ctx: RunContext, eps: statistics.EpsObservation) -> dict[str, str]:
    """Where the constructor's eps is used, as eps-ignored judges it (nothing when untested)."""
    if eps.placement == "ignored":
        return {"eps-ignored": "no"}
    if eps.placement not in ("inside-sqrt", "outside-sqrt"):
        return {}
    if ctx.spec.eval_uses != "running":
        return {"eps-ignored": "in training"}
    used = cached(ctx, statistics.eval_eps, eps.placement)
    if used is None or math.isnan(used):
        return {}
    if statistics.eval_eps_matches(used, eps.requested):
        return {"eps-ignored": "in training and eval"}
    return {"eps-ignored": f"in training only (eval adds {used if abs(used) > 1e-12 else 0.0:.3g})"}


def safely(reason: Any, ctx: RunContext) -> str:
    """A check precondition's reason, or "unmeasurable" when the probe it needs failed."""
    try:
        return str(reason(ctx))
    except UserCodeError:
        return "unmeasurable"


def uniform(values: list[float]) -> str:
    return (
        f"{values[0]:g}"
        if values and all(abs(v - values[0]) < 1e-9 for v in values)
        else str([round(v, 3) for v in values])
    )


def momentum_values(obs: running.MomentumObservation | None) -> dict[str, str]:
    if obs is None:
        return {}
    values = {"momentum-default": f"{obs.default.new_weight:.4g}"}
    # The same measurement running-var-estimator judges: what running_var blends in.
    values["running-var-estimator"] = obs.default.var_tracks
    if obs.explicit is not None:
        m = running.EXPLICIT_MOMENTUM
        conventions = {convention(w, m) for w in (obs.explicit.new_weight, obs.explicit.var_weight)
                       if not math.isnan(w)}
        # running_mean and running_var blended with different weights: no one convention
        values["momentum-inverted"] = conventions.pop() if len(conventions) == 1 else "mixed (mean and var differ)"
    return values


def convention(weight: float, momentum: float) -> str:
    if abs(weight - momentum) < 1e-3:
        return "new-weight"
    return "old-weight" if abs(weight - (1 - momentum)) < 1e-3 else f"other (weight {weight:.3g})"


def mode_values(obs: modes.ModeObservation | None, clipped: bool = False) -> dict[str, str]:
    if obs is None:
        return {}
    follows_grad = obs.train_grad.uses != obs.train_no_grad.uses or obs.eval_grad.uses != obs.eval_no_grad.uses
    updates = obs.eval_grad.updates or obs.eval_no_grad.updates
    values = {
        "eval-uses-batch-stats": obs.eval_no_grad.uses,
        "eval-updates-running-stats": "yes" if updates else "no",
        "mode-follows-grad": "torch.is_grad_enabled()" if follows_grad else "module.training",
    }
    if clipped and obs.eval_no_grad.uses == "other":  # a fused activation clips what would tell them apart
        del values["eval-uses-batch-stats"]
    return values


def fingerprint(ctx: RunContext) -> dict[str, Any]:
    observed = observed_values(ctx)
    rows = layout_rows(ctx) + [
        Row(key, LABELS[key], expected, observed.get(key, UNKNOWN))
        for key, expected in expected_values(ctx.spec).items()
    ]
    return {
        "rows": [
            {"key": r.key, "label": r.label, "expected": r.expected, "observed": r.observed, "verdict": r.verdict}
            for r in rows
        ],
        "closest_spec": closest_spec(ctx.spec, observed, layout_seen(ctx)),
    }


@dataclass(frozen=True)
class LayoutSeen:
    """The ranks the class accepted and the axes it reduced over, to compare with each spec's own:
    a per-sample class is not "like the pytorch spec except its counter"."""

    rank: int
    channel_axis: int  # the checked spec's: inputs were laid out for it
    tried: tuple[int, ...]
    accepted: tuple[int, ...] | None = None  # None: not measured
    structure: statistics.Structure | None = None  # its axes None: no reduction explains the output

    def compare(self, spec: Spec) -> tuple[list[str], list[str]]:
        """(what differs from the spec, what could not be compared with it)."""
        from bnconform.checks.basics import missing_ranks

        differs, uncompared = [], []
        axes = None if self.structure is None else self.structure.axes
        if self.structure is not None and (axes is None or axes != spec.reduction_axes.get(self.rank)):
            differs.append("reduction-axes")
        if self.accepted is None:
            uncompared.append("input-rank-unsupported")
        elif spec.channel_axis != self.channel_axis:  # ranks were tried laid out for the checked spec only
            uncompared.append("input-rank-unsupported")
        elif missing_ranks(self.accepted, self.tried, spec.rank_groups):
            differs.append("input-rank-unsupported")
        return differs, uncompared


def layout_seen(ctx: RunContext) -> LayoutSeen:
    support = cached(ctx, basics.rank_support)
    return LayoutSeen(ctx.primary_rank, ctx.spec.channel_axis, tuple(ctx.ranks),
                      None if support is None else tuple(support.accepted),
                      cached(ctx, statistics.structure, ctx.primary_rank))


def layout_rows(ctx: RunContext) -> list[Row]:
    from bnconform.checks.basics import missing_ranks
    from bnconform.checks.normalization import describe_axes

    rows = []
    support = cached(ctx, basics.rank_support)
    if support is not None:
        rows.append(
            Row(
                "input-rank-unsupported",
                LABELS["input-rank-unsupported"],
                "whole groups of " + " / ".join(str(list(g)) for g in ctx.spec.rank_groups),
                str(list(support.accepted)),
                False,
                not missing_ranks(support.accepted, ctx.ranks, ctx.spec.rank_groups),
            )
        )
    structure = cached(ctx, statistics.structure, ctx.primary_rank)
    rank, axis = ctx.primary_rank, ctx.spec.channel_axis
    expected = describe_axes(ctx.spec.axes_for_rank(rank), rank, axis)
    observed = UNKNOWN if structure is None else describe_axes(structure.axes, rank, axis)
    rows.append(Row("reduction-axes", LABELS["reduction-axes"], expected, observed, False))
    return rows


MIN_OBSERVED = 6  # below this, "closest spec" would be a guess


def closest_spec(current: Spec, observed: dict[str, str], layout: LayoutSeen | None = None) -> dict[str, Any]:
    """The shipped spec with the fewest differing observed behaviours (current spec wins ties).

    The layout counts first, compared with each spec's own axes and rank groups: a class reducing
    around the checked spec's channel axis differs from a spec with the other channel axis, however
    alike their momentum and estimators, and one that reduces per sample differs from them all.
    """
    if sum(v != UNKNOWN for v in observed.values()) < MIN_OBSERVED:
        return {"name": None, "differences": [], "reason": "too little of the behaviour could be observed"}
    best: tuple[tuple[int, int], str, list[str], list[str]] | None = None
    for spec in sorted(load_builtin_specs(), key=lambda s: s.name != current.name):
        expected = expected_values(spec)
        differences, uncompared = ([], []) if layout is None else layout.compare(spec)
        # a behaviour the spec has no use for (a batch variance estimator under frozen statistics)
        # but the class was seen to have is a difference too, or the least specific spec would win
        differences += [k for k, v in observed.items() if v != UNKNOWN and (
            not same(expected[k], v) if k in expected else v != NOT_APPLICABLE)]
        rank = (len(differences), len(uncompared))  # on a tie, the spec compared on more wins
        if best is None or rank < best[0]:
            best = (rank, spec.name, differences, uncompared)
    assert best is not None
    winner = next(s for s in load_builtin_specs() if s.name == best[1])
    unobserved = best[3] + [k for k in expected_values(winner) if observed.get(k, UNKNOWN) == UNKNOWN]
    return {"name": best[1], "differences": best[2], "unobserved": unobserved}
