"""Momentum: the weight of the new batch, by default and as passed, in the spec's convention."""

from __future__ import annotations

from bnconform.construct import DEFAULT
from bnconform.context import RunContext
from bnconform.probes import running
from bnconform.registry import Verdict, check, failed, passed, skipped
from bnconform.repro import attr, axes_expr, fmt, snippet
from bnconform.spec import Spec

MOMENTUM_TOL = 1e-3
UPDATES = ("running-stats-missing",)


def momentum_repro(ctx: RunContext, **roles: object) -> str:
    mean = attr(ctx, "running_mean", "running_mean")
    return snippet(
        ctx,
        [
            f"start = {mean}.detach().clone().reshape(-1)",
            "bn.train()",
            "bn(x)",
            f"batch_mean = x.mean(dim={axes_expr(ctx)})",
            f"weight = ({mean}.detach().reshape(-1) - start) / (batch_mean - start)",
            "print('weight of the new batch:', weight)",
        ],
        **roles,
    )


def close(a: float, b: float) -> bool:
    return abs(a - b) <= MOMENTUM_TOL


def unmeasurable(update: running.Update) -> str:
    """Why no momentum can be solved for: it assumes each channel's running mean is a blend of
    its old value and the batch mean (PROBING.md 3: establish the model, then solve)."""
    if not update.readable:
        return "the running statistics are not one readable value per channel after a training step"
    if not update.moved:
        return "the running statistics do not move in the first training step (see running-stats-not-updated)"
    if not update.per_channel:
        weights = [round(w, 4) for w in update.mean_weights[:5]]
        return f"running_mean is not a per-channel blend of its old value and the batch mean (weights {weights})"
    return ""


def inverted_statistics(update: running.Update, expected: float) -> list[str]:
    """Which running statistics give the new batch 1 - expected instead of expected."""
    weights = {"running_mean": update.new_weight}
    if update.var_tracks in ("unbiased", "biased", "std"):
        weights["running_var"] = update.var_weight
    return [name for name, w in weights.items() if close(w, 1 - expected) and not close(w, expected)]


@check(
    "momentum-inverted",
    area="momentum",
    title="The weight of the new batch in the running update is the spec's, not 1 - it",
    severity="error",
    why="With an inverted momentum the running statistics follow the last batch (weight 0.9 instead of 0.1)"
    " or barely move: eval-mode outputs are noisy or stale while training looks fine.",
    hint="Two conventions exist: PyTorch's running = (1 - momentum) * running + momentum * batch (0.1 weighs the"
    " NEW batch) and Keras/MXNet/Flax's running = momentum * running + (1 - momentum) * batch (0.9, 0.99 weigh"
    " the OLD value). Follow the spec's: pass 1 - value, or flip the formula.",
    requires=UPDATES,
)
def momentum_inverted(ctx: RunContext) -> Verdict:
    obs = ctx.probe(running.momentum)
    if reason := unmeasurable(obs.default):
        return skipped(f"cannot be measured: {reason}")
    checks = [("default construction", obs.default, obs.expected_default, {})]
    if obs.explicit is not None and not unmeasurable(obs.explicit):
        checks.insert(0, (f"momentum={running.EXPLICIT_MOMENTUM}", obs.explicit, obs.expected_explicit,
                          {"momentum": running.EXPLICIT_MOMENTUM}))
    for label, update, expected, roles in checks:
        stats = inverted_statistics(update, expected)
        if stats:
            cause = "by formula" if roles else "by default value"
            observed = update.new_weight if "running_mean" in stats else update.var_weight
            which = " and ".join(stats)
            return failed(
                f"Momentum is inverted ({cause}) in {which}: with {label} the new batch gets weight {fmt(observed)},"
                f" the spec's {ctx.spec.momentum_convention} convention gives {fmt(expected)}",
                expected=f"new-batch weight {fmt(expected)}",
                observed=f"new-batch weight {fmt(observed)} (= 1 - {fmt(expected)}) in {which}",
                repro=momentum_repro(ctx, **roles),
                hint=convention_hint(ctx.spec),
                details={"cause": cause, "construction": label, "statistics": stats,
                         "mean_weight": update.new_weight, "var_weight": update.var_weight},
            )
    return passed(default=obs.default.new_weight, explicit=None if obs.explicit is None else obs.explicit.new_weight)


@check(
    "momentum-ignored",
    area="momentum",
    title="The constructor's momentum is used",
    severity="error",
    why="A hard-coded momentum silently ignores the user's setting, e.g. a port that passes the source"
    " framework's value gets PyTorch's 0.1 anyway.",
    hint="Store the constructor's momentum (self.momentum = momentum) and use it in the update.",
    requires=UPDATES,
)
def momentum_ignored(ctx: RunContext) -> Verdict:
    obs = ctx.probe(running.momentum)
    if obs.explicit is None:
        return skipped(momentum_not_free(ctx))
    if reason := unmeasurable(obs.default) or unmeasurable(obs.explicit):
        return skipped(f"cannot be measured: {reason}")
    explicit, default = obs.explicit.new_weight, obs.default.new_weight
    if close(explicit, obs.expected_explicit) or close(explicit, 1 - obs.expected_explicit):
        return passed(explicit=explicit)
    if not close(explicit, default):
        return passed(explicit=explicit)  # it has an effect; a wrong effect is another check's finding
    return failed(
        f"momentum={running.EXPLICIT_MOMENTUM} has no effect: the new batch still gets weight {fmt(explicit)}",
        expected=f"new-batch weight {fmt(obs.expected_explicit)}",
        observed=f"new-batch weight {fmt(explicit)}, the same as the default",
        repro=momentum_repro(ctx, momentum=running.EXPLICIT_MOMENTUM),
    )


def momentum_not_free(ctx: RunContext) -> str:
    """Why bnconform cannot choose the momentum it constructs with."""
    pinned = ctx.builder.pinned("momentum")
    if pinned is not DEFAULT:
        return (f"momentum is given to the constructor ({pinned!r}: --init, a configured init or the scanned "
                "layer's arguments), so neither the class default nor another value is observed")
    return "the constructor takes no momentum argument"


@check(
    "momentum-default",
    area="momentum",
    title="The default momentum is the spec's",
    severity="warning",
    why="Another default momentum changes how fast the running statistics follow training, so a model"
    " ported with default settings evaluates differently.",
    hint="Use the spec's default momentum (Expected gives the weight of the new batch it means).",
    requires=UPDATES,
)
def momentum_default(ctx: RunContext) -> Verdict:
    if ctx.builder.pinned("momentum") is not DEFAULT:
        return skipped(momentum_not_free(ctx))
    obs = ctx.probe(running.momentum)
    if reason := unmeasurable(obs.default):
        if obs.default.readable and not obs.default.moved and close(obs.expected_default, 0.0):
            return passed(default=0.0)  # frozen statistics: not moving is the spec's weight 0
        return skipped(f"cannot be measured: {reason}")
    observed, expected = obs.default.new_weight, obs.expected_default
    if close(observed, expected):
        return passed(default=observed)
    if close(observed, 1 - expected):
        if formula_inverted(obs):
            return passed(default=observed)  # the spec's value, flipped by the formula: momentum-inverted's
        return skipped(f"the default gives the new batch weight {fmt(observed)}, 1 - the spec's {fmt(expected)}:"
                       " the default value is inverted (see momentum-inverted)")
    return failed(
        f"Default construction gives the new batch weight {fmt(observed)}; the spec's default gives {fmt(expected)}"
        + old_weight_note(observed, expected),
        expected=f"new-batch weight {fmt(expected)}"
        f" (momentum {ctx.spec.momentum_default:g}, {ctx.spec.momentum_convention})",
        observed=f"new-batch weight {fmt(observed)}",
        repro=momentum_repro(ctx),
        hint=default_hint(ctx.spec),
    )


FORMULAS = {"new-weight": "running = (1 - momentum) * running + momentum * batch",
            "old-weight": "running = momentum * running + (1 - momentum) * batch"}


def convention_hint(spec: Spec) -> str:
    """momentum-inverted's fix in the convention of the spec in use."""
    other = ("A Keras/MXNet/Flax value (0.9, 0.99) is the weight of the OLD value"
             if spec.momentum_convention == "new-weight" else "A PyTorch value (0.1) is the weight of the NEW batch")
    return (f"The {spec.name} spec's convention: {FORMULAS[spec.momentum_convention]} with"
            f" momentum={spec.momentum_default:g}. {other}: use 1 - value, or flip the formula.")


def default_hint(spec: Spec) -> str:
    """momentum-default's fix: the spec's default value, and the weight it means."""
    side = ("the weight of the new batch" if spec.momentum_convention == "new-weight"
            else f"the weight of the old value (the new batch gets {fmt(spec.new_weight(spec.momentum_default))})")
    return f"Use the {spec.name} spec's default: momentum={spec.momentum_default:g}, {side}."


def formula_inverted(obs: running.MomentumObservation) -> bool:
    """An explicit momentum acts as 1 - it: the formula flips every value, the default included."""
    return obs.explicit is not None and not unmeasurable(obs.explicit) and bool(
        inverted_statistics(obs.explicit, obs.expected_explicit))


def old_weight_note(observed: float, expected: float) -> str:
    """A default that gives most of the weight to the new batch where the spec gives most to the old
    statistics: the shape of a Keras/Flax/MXNet default kept in a PyTorch-style formula."""
    if observed > 0.5 > expected:
        return (f" ({fmt(observed)} is how a Keras/Flax/MXNet momentum, the weight of the OLD statistics,"
                " acts when used in PyTorch's formula)")
    return ""


@check(
    "momentum-none",
    area="momentum",
    title="momentum=None (a cumulative moving average) is supported where the spec has it",
    severity="warning",
    why="PyTorch's momentum=None averages every batch seen so far (weight 1/num_batches_tracked); code"
    " and configs that pass it (fine-tuning recipes, statistics recalibration) crash or silently"
    " use another average.",
    hint="Accept momentum=None and use exponential_average_factor = 1 / num_batches_tracked when it is None.",
    requires=UPDATES,
)
def momentum_none(ctx: RunContext) -> Verdict:
    if ctx.spec.momentum_none != "cumulative":
        return skipped("the spec has no momentum=None")
    if ctx.builder.pinned("momentum") is not DEFAULT or not ctx.builder.accepts("momentum"):
        return skipped(momentum_not_free(ctx))
    if reason := unmeasurable(ctx.probe(running.momentum).default):
        return skipped(f"cannot be measured: {reason}")
    obs = ctx.probe(running.cumulative)
    if obs.weights and all(abs(w - 1 / (i + 1)) <= MOMENTUM_TOL for i, w in enumerate(obs.weights)):
        return passed(weights=list(obs.weights))
    observed = obs.error or f"new-batch weights {[round(w, 4) for w in obs.weights]} over {len(obs.weights)} steps"
    return failed(
        f"With momentum=None the running mean is not a cumulative average: {observed}",
        expected="new-batch weights 1, 1/2, 1/3 (cumulative average)",
        observed=observed,
        repro=snippet(ctx, ["bn.train()", "for _ in range(3):", "    bn(x)", "print(bn.running_mean)"],
                      momentum=None),
        details=none_causes(obs.error, tuple(obs.weights), ctx.probe(running.momentum).default.new_weight),
    )


def none_causes(error: str, weights: tuple[float, ...] = (), default_weight: float = float("nan")) -> dict[str, object]:
    """What can produce the momentum=None behaviour observed. A division by zero is 1 / a counter
    that did not count; any other raise is None not being handled, which no wrong weight or
    counter explains. Measured weights name their cause by their pattern: 1 - 1/n is the
    cumulative factor used as the old value's weight (an inverted formula), the default weight
    at every step a momentum that is not read at all, 1 at every step a counter stuck at one.
    Any other pattern is None's own handling (say, a separate default), a root of its own."""
    if error:
        if "division by zero" in error or "ZeroDivisionError" in error:
            return {"possible_causes": ["num-batches-tracked"]}
        return {"accounted_for": True}
    if not weights:
        return {}
    if all(abs(w - (1 - 1 / (i + 1))) <= MOMENTUM_TOL for i, w in enumerate(weights)):
        return {"possible_causes": ["momentum-inverted"]}
    if all(abs(w - 1) <= MOMENTUM_TOL for w in weights):
        return {"possible_causes": ["num-batches-tracked"]}
    if all(abs(w - default_weight) <= MOMENTUM_TOL for w in weights):
        return {"possible_causes": ["momentum-ignored"]}
    return {"accounted_for": True}
