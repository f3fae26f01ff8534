"""Training-mode normalization: reduction axes, variance estimator, eps, numerical stability."""

from __future__ import annotations

import math

from bnconform.context import RunContext
from bnconform.findings import Severity
from bnconform.probes import basics, statistics
from bnconform.registry import Verdict, check, failed, passed, skipped
from bnconform.repro import attr, axes_expr, fmt, snippet, spec_training_output

FORWARD = ("forward-failed",)


def describe_axes(axes: tuple[int, ...] | None, rank: int, channel_axis: int) -> str:
    if axes is None:
        return "no reduction explains the output"
    names = axis_names(rank, channel_axis)
    kept = [names[a] for a in range(rank) if a not in axes]
    label = f"over ({', '.join(names[a] for a in axes)})"
    if not kept:
        return f"{label}: one mean and variance shared by every channel"
    if kept == [names[channel_axis % rank]]:
        return f"{label}: per channel"
    if kept == [names[0]]:
        return f"{label}: per sample (LayerNorm-like)"
    if sorted(kept) == sorted([names[0], names[channel_axis % rank]]):
        return f"{label}: per sample and channel (InstanceNorm-like)"
    return f"{label}: separate statistics per ({', '.join(kept)}) position"


def axis_names(rank: int, channel_axis: int) -> list[str]:
    spatial = {2: [], 3: ["L"], 4: ["H", "W"], 5: ["D", "H", "W"]}[rank]
    return ["N", *spatial, "C"] if channel_axis == -1 else ["N", "C", *spatial]


def structures(ctx: RunContext) -> list[statistics.Structure]:
    return [ctx.probe(statistics.structure, rank) for rank in ctx.probe(basics.rank_support).accepted]


@check(
    "reduction-axes",
    area="normalization",
    title="Statistics are reduced over the spec's axes (per channel over N and spatial axes)",
    severity="error",
    why="Per-position or per-sample statistics are a different layer (LayerNorm/InstanceNorm): outputs"
    " depend on other samples in the wrong way and eval diverges from training.",
    hint="Reduce over every axis except the channel axis: x.mean(dim=(0, 2, 3)) for (N, C, H, W).",
    requires=FORWARD,
)
def reduction_axes(ctx: RunContext) -> Verdict:
    measured = structures(ctx)
    if any(s.source == "constant" for s in measured):
        return skipped("cannot be measured: with gamma=1 and beta=0 the training output does not depend on the input")
    if any(s.axes is None for s in measured):
        return skipped("the training output is not a per-channel normalization under any reduction of the input")
    wrong = [s for s in measured if s.axes != ctx.spec.axes_for_rank(s.rank)]
    if not wrong:
        return passed()
    s = wrong[0]
    axis = ctx.spec.channel_axis
    observed = "; ".join(f"rank {w.rank}: {describe_axes(w.axes, w.rank, axis)}" for w in wrong)
    return failed(
        f"Training statistics are not reduced over the spec's axes ({observed})",
        expected=f"rank {s.rank}: {describe_axes(ctx.spec.axes_for_rank(s.rank), s.rank, axis)}",
        observed=observed,
        repro=snippet(
            ctx,
            [
                "bn.train()",
                "y = bn(x)",
                f"reference = {spec_training_output(ctx, 'x')}  # statistics over the spec's axes",
                "print('largest difference from the reference (about 0 when they match):',"
                " (y - reference).abs().max().item())",
            ],
            ctx.shape(s.rank),
        ),
        details={"observed_axes": {str(w.rank): list(w.axes) if w.axes else None for w in wrong}},
    )


def rounded(values: tuple[float, ...]) -> list[float]:
    return [float(f"{v:.4g}") for v in values[:5]]


def primary_structure(ctx: RunContext) -> statistics.Structure:
    return ctx.probe(statistics.structure, ctx.primary_rank)


def variance_share(ctx: RunContext) -> float:
    return ctx.probe(statistics.denominator_variance_share, ctx.primary_rank)


def unmeasurable(ctx: RunContext) -> str:
    """Why the variance and eps cannot be solved for from the denominator."""
    if reason := not_batch_normalized(ctx):
        return reason
    if statistics.denominator_ignores_variance(ctx):
        return "the denominator does not change with the channel's variance (see norm-variance-estimator)"
    return ""


def not_batch_normalized(ctx: RunContext) -> str:
    """Why the module is not seen normalizing with per-channel batch statistics over the spec's
    axes, which every reading of the variance assumes (PROBING.md 3: model first, then solve)."""
    s = primary_structure(ctx)
    if s.axes != ctx.spec.axes_for_rank(s.rank):
        return "the statistics are not reduced over the spec's axes (see reduction-axes)"
    if s.source == "constant":
        return "with gamma=1 and beta=0 the training output does not depend on the input (see affine-apply)"
    if s.source != ctx.spec.train_uses:
        return f"training does not normalize with the {ctx.spec.train_uses} statistics (see train-uses-running-stats)"
    return ""


NORMALIZATION = FORWARD


@check(
    "train-uses-running-stats",
    area="normalization",
    title="Training normalizes with the batch statistics",
    severity="error",
    why="Normalizing with running statistics in training removes BatchNorm's effect on optimisation and"
    " makes gradients ignore the batch statistics.",
    hint="In training mode use the current batch's mean and variance; use running statistics only in eval.",
    requires=NORMALIZATION,
)
def train_uses_running_stats(ctx: RunContext) -> Verdict:
    s = primary_structure(ctx)
    if ctx.spec.train_uses == "running":  # a frozen layer: the fixed statistics in both modes
        if s.source == "running":
            return passed(source=s.source)
        return failed(f"Training-mode output is normalized with {s.source} statistics; the spec's are frozen",
                      expected="running statistics", observed=f"{s.source} statistics",
                      repro=snippet(ctx, ["bn.train()", "y = bn(x)", "bn.eval()", "print((y - bn(x)).abs().max())"]))
    if s.source == "batch":
        return passed(source=s.source)
    if s.source == "constant" or (s.source == "other" and not s.shift):
        return skipped("cannot be measured: the training output is not a per-channel normalization of the input")
    if s.source == "running":
        message, observed = "Training-mode output is normalized with the running statistics, not the batch's", (
            "running statistics"
        )
    else:
        observed = f"mean {rounded(s.shift)}, denominator {rounded(s.scale)}"
        message = (
            "Training-mode output (on the third training step) is normalized with statistics that are neither"
            f" the batch's nor the running ones: {observed}; the batch mean is {rounded(s.batch_mean)}"
        )
    return failed(
        message,
        expected="batch statistics",
        observed=observed,
        details={"source": s.source, "shift": list(s.shift), "scale": list(s.scale)},
        repro=snippet(
            ctx,
            [
                "bn.train()",
                "y = bn(x)",
                f"print('per-channel mean of y (should be ~0):', y.mean(dim={axes_expr(ctx)}))",
            ],
        ),
    )


@check(
    "norm-variance-estimator",
    area="normalization",
    title="Training normalizes with the spec's variance estimator",
    severity="error",
    why="Normalizing with the unbiased variance shrinks outputs by sqrt((n-1)/n): large for small batches,"
    " and inconsistent with the running statistics used in eval. A denominator that does not follow the"
    " variance at all (centring only) leaves every channel at its own scale.",
    hint="Normalize with the biased variance: x.var(dim=axes, unbiased=False).",
    requires=NORMALIZATION,
)
def norm_variance_estimator(ctx: RunContext) -> Verdict:
    if ctx.spec.train_uses == "running":
        return skipped("the spec normalizes training with the running statistics: no batch variance")
    if reason := not_batch_normalized(ctx):
        return skipped(f"cannot be measured: {reason}")
    s = primary_structure(ctx)
    n = s.values_per_channel
    if statistics.denominator_ignores_variance(ctx):
        return variance_ignored(ctx, s)
    if s.estimator == ctx.spec.norm_variance:
        return passed(ratio=s.ratio)
    if s.estimator == "other":
        # Ambiguous: a stray output factor looks the same (PROBING.md: do not name a wrong cause).
        return skipped(
            f"the effective normalizing variance is {fmt(s.ratio)} times the biased batch variance, which fits"
            f" neither estimator (biased 1, unbiased {fmt(n / (n - 1))})"
        )
    return failed(
        f"Training normalizes with the {s.estimator} variance; the spec uses the {ctx.spec.norm_variance} one",
        expected=f"{ctx.spec.norm_variance} variance (n = {n} values per channel)",
        observed=f"{s.estimator} variance (ratio to biased {fmt(s.ratio)}; n/(n-1) = {fmt(n / (n - 1))})",
        repro=snippet(
            ctx,
            [
                "bn.train()",
                "y = bn(x)",
                f"print('per-channel biased var of y (should be ~1):', y.var(dim={axes_expr(ctx)}, unbiased=False))",
            ],
        ),
    )


def variance_ignored(ctx: RunContext, s: statistics.Structure) -> Verdict:
    shown = ", ".join(fmt(d) for d in s.scale[:5])
    return failed(
        "Training does not divide by the batch standard deviation: the denominator does not change"
        " with the channel's variance",
        expected=f"sqrt({ctx.spec.norm_variance} batch variance + eps), n = {s.values_per_channel} values per channel",
        observed=f"denominators [{shown}] in channels whose variances differ up to 4x (the variance accounts"
        f" for {variance_share(ctx):.1%} of denominator^2)",
        repro=snippet(
            ctx,
            [
                "bn.train()",
                "y = bn(x)",
                f"print('per-channel biased var of y (should be ~1):', y.var(dim={axes_expr(ctx)}, unbiased=False))",
            ],
        ),
    )


def eps_observation(ctx: RunContext) -> statistics.EpsObservation:
    estimator = primary_structure(ctx).estimator
    if estimator not in ("biased", "unbiased"):
        estimator = ctx.spec.norm_variance
    return ctx.probe(statistics.eps_behaviour, estimator)


PLACEMENTS = ("inside-sqrt", "outside-sqrt")
EPS_REPRO = [
    "bn.train()",
    "x = x * 1e-3  # variance comparable to eps",
    "y = bn(x)",
]


@check(
    "eps-placement",
    area="normalization",
    title="eps is added to the variance inside the square root",
    severity="warning",
    why="(x - mean) / (sqrt(var) + eps) differs from (x - mean) / sqrt(var + eps) when the variance is"
    " comparable to eps: channels with tiny variance are scaled differently from every framework.",
    hint="Use (x - mean) / torch.sqrt(var + eps).",
    requires=NORMALIZATION,
)
def eps_placement(ctx: RunContext) -> Verdict:
    if reason := unmeasurable(ctx):
        return skipped(f"cannot be measured: {reason}")
    obs = eps_observation(ctx)
    if obs.placement == "other":
        return skipped("the eps behaviour matches no formula of eps")
    placement = obs.placement if obs.placement in PLACEMENTS else obs.default_placement
    if placement == ctx.spec.eps_placement:
        return passed(placement=placement)
    how = f"with eps={obs.requested}" if obs.placement in PLACEMENTS else "at the default eps (variances ~eps)"
    formula = {"outside-sqrt": "(x - mean) / (sqrt(var) + eps)", "inside-sqrt": "(x - mean) / sqrt(var + eps)"}
    return failed(
        f"{how.capitalize()} the output matches {formula[placement]}",
        expected=ctx.spec.eps_placement,
        observed=placement,
        repro=snippet(
            ctx,
            [*EPS_REPRO, f"print(y.var(dim={axes_expr(ctx)}, unbiased=False))  # compare with var/(var+eps)"],
            **({"eps": obs.requested} if obs.placement in PLACEMENTS else {}),  # no eps argument: default build
        ),
    )


@check(
    "eps-ignored",
    area="normalization",
    title="The constructor's eps is used",
    severity="warning",
    why="A hard-coded eps ignores the value a port passes (Keras uses 1e-3), so channels with small"
    " variance are normalized differently from the source model; an eval branch written out"
    " separately often leaves eps out.",
    hint="Store the constructor's eps and use it in the normalization, in training and in eval mode.",
    requires=NORMALIZATION,
)
def eps_ignored(ctx: RunContext) -> Verdict:
    if reason := unmeasurable(ctx):
        return skipped(f"cannot be measured: {reason}")
    obs = eps_observation(ctx)
    if obs.placement == "untested":
        return skipped("the constructor takes no eps argument")
    if obs.placement != "ignored":
        return eval_eps_verdict(ctx, obs)
    return failed(
        f"Constructed with eps={obs.requested}, the module adds {fmt(obs.explicit_value)} to the variance",
        expected=f"eps {obs.requested}",
        observed=f"eps {fmt(obs.explicit_value)}",
        repro=snippet(ctx, [*EPS_REPRO], eps=obs.requested),
    )


@check(
    "eps-default",
    area="normalization",
    title="The default eps is the spec's",
    severity="warning",
    why="A different default eps (1e-3 vs 1e-5) changes every output whose channel variance is small;"
    " ported models drift.",
    hint="Use the spec's default eps (PyTorch 1e-5, Keras 1e-3).",
    requires=NORMALIZATION,
)
def eps_default(ctx: RunContext) -> Verdict:
    if reason := unmeasurable(ctx):
        return skipped(f"cannot be measured: {reason}")
    obs = eps_observation(ctx)
    if obs.placement in ("other",):
        return skipped("the eps behaviour matches no formula of eps")
    expected = ctx.spec.eps
    if math.isclose(obs.default_value, expected, rel_tol=0.1):
        return passed(default=obs.default_value)
    return failed(
        f"A default-built module adds {fmt(obs.default_value)} to the variance; the spec's eps is {expected:g}",
        expected=f"eps {expected:g}",
        observed=f"eps {fmt(obs.default_value)}",
        repro=snippet(ctx, [*EPS_REPRO]),
    )


@check(
    "unstable-variance",
    area="normalization",
    title="The variance is numerically stable for large means and small spread (float32)",
    severity="error",
    why="E[x^2] - E[x]^2 cancels catastrophically in float32 when |mean| >> std (e.g. un-normalized"
    " inputs, mean 3000, std 1): the variance becomes garbage or negative and outputs explode or NaN.",
    hint="Compute the variance as ((x - mean) ** 2).mean(...) or use torch.var_mean; accumulate half"
    " inputs in float32.",
    requires=FORWARD,
)
def unstable_variance(ctx: RunContext) -> Verdict:
    if ctx.spec.variance_algorithm == "fast":
        return skipped("the spec's convention computes E[x^2] - E[x]^2 (fast variance)")
    if ctx.spec.train_uses == "running":
        return skipped("the spec normalizes training with the running statistics: no batch variance")
    if reason := unmeasurable(ctx):
        return skipped(f"cannot be measured: {reason}")
    estimator = primary_structure(ctx).estimator
    obs = ctx.probe(statistics.stability, estimator if estimator in ("biased", "unbiased") else ctx.spec.norm_variance,
                    *own_eps(ctx))
    if obs.relative_error <= 0.05:
        return passed(relative_error=obs.relative_error)
    return failed(
        f"In float32 with mean {obs.mean_offset:g} and std ~1 the normalizing variance is off by"
        f" {obs.relative_error:.3g} (relative)",
        expected="relative error <= 0.05",
        observed=f"relative error {obs.relative_error:.3g}",
        repro="\n".join(
            [
                *snippet(ctx, []).splitlines()[:3],
                "bn = bn.float()",
                f"x = (torch.randn({ctx.layout_shape(ctx.primary_rank, 4)}) + {obs.mean_offset:g}).float()",
                "bn.train()",
                "y = bn(x)",
                f"print(y.var(dim={axes_expr(ctx)}, unbiased=False))  # should be ~1",
            ]
        ),
    )


def own_eps(ctx: RunContext) -> tuple[float | None, str]:
    """The eps a default-built module adds and where, when its eps behaviour has a formula; else
    the spec's (None)."""
    obs = eps_observation(ctx)
    if obs.placement == "other":
        return None, ctx.spec.eps_placement
    return obs.default_value, obs.default_placement


def eval_eps_verdict(ctx: RunContext, obs: statistics.EpsObservation) -> Verdict:
    """Training uses the eps it was given: so must eval, where the running variance replaces the
    batch's (an eval path written separately may leave eps out, or use another)."""
    if obs.placement not in PLACEMENTS or ctx.spec.eval_uses != "running":
        return passed(explicit=obs.explicit_value)
    used = ctx.probe(statistics.eval_eps, obs.placement)
    if statistics.eval_eps_matches(used, obs.requested):
        return passed(explicit=obs.explicit_value, eval=used)
    mean, var = attr(ctx, "running_mean", "running_mean"), attr(ctx, "running_var", "running_var")
    ratio = 1 + obs.requested if obs.placement == "outside-sqrt" else math.sqrt(1 + obs.requested)
    used = used if abs(used) > 1e-12 else 0.0  # float64 rounding of a variance of about 1
    return failed(
        f"Constructed with eps={obs.requested}, the module adds {fmt(used)} to the running variance in eval mode"
        f" (training adds the {obs.requested} it was given)"
        + (": a channel whose running variance reaches 0 divides by 0 in eval" if used <= 0 else ""),
        severity=Severity.ERROR if used <= 0 else None,
        expected=f"eps {obs.requested} in eval mode too",
        observed=f"eps {fmt(used)} in eval mode",
        repro=snippet(ctx, [
            "with torch.no_grad():",
            f"    {mean}.zero_()",
            f"    {var}.fill_(1.0)",
            "bn.eval()",
            "y = bn(x)",
            f"print(x.std(dim={axes_expr(ctx)}, unbiased=False) / y.std(dim={axes_expr(ctx)}, unbiased=False))"
            f"  # {ratio:.4g} where eval adds eps={obs.requested}",
        ], eps=obs.requested),
        details={"mode": "eval", "eval_eps": used},
    )
