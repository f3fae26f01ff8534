"""The spec's behaviour with every deviation the specific probes measured applied.

Output comparisons use it to tell a consequence from a new defect: when the training output
matches the spec once the measured eps, estimator and axes are put in, the output
difference is explained by those findings (their consequence, listed under them); when it
still differs, something no specific check names is wrong (PROBING.md 4 and 5).
"""

from __future__ import annotations

import math

from bnconform.context import RunContext
from bnconform.errors import UserCodeError
from bnconform.probes import basics, statistics
from bnconform.reference import Behaviour

PLACEMENTS = ("inside-sqrt", "outside-sqrt")


def explained_behaviour(ctx: RunContext) -> tuple[Behaviour, tuple[str, ...]]:
    """(behaviour, codes whose measured deviation it includes); codes is () when none apply."""
    try:
        return deviations(ctx)
    except UserCodeError:
        return ctx.behaviour(), ()  # a probe could not run: explain nothing rather than guess


def deviations(ctx: RunContext) -> tuple[Behaviour, tuple[str, ...]]:
    behaviour, codes = ctx.behaviour(), []
    structures = [ctx.probe(statistics.structure, rank) for rank in ctx.probe(basics.rank_support).accepted]
    axes = dict(behaviour.reduction_axes)
    for s in structures:
        if s.axes is not None and s.axes != axes.get(s.rank):
            axes[s.rank] = s.axes
            codes.append("reduction-axes")
    primary = ctx.probe(statistics.structure, ctx.primary_rank)
    if primary.source != ctx.spec.train_uses or primary.axes != ctx.spec.axes_for_rank(primary.rank) \
            or primary.activation or statistics.denominator_ignores_variance(ctx):  # nothing to read eps from
        return behaviour.but(reduction_axes=axes), tuple(dict.fromkeys(codes))
    changes: dict[str, object] = {"reduction_axes": axes}
    if primary.estimator in ("biased", "unbiased") and primary.estimator != behaviour.norm_variance:
        changes["norm_variance"] = primary.estimator
        codes.append("norm-variance-estimator")
    estimator = str(changes.get("norm_variance", behaviour.norm_variance))
    eps = ctx.probe(statistics.eps_behaviour, estimator)
    if eps.default_placement in PLACEMENTS and eps.default_placement != behaviour.eps_placement:
        changes["eps_placement"] = eps.default_placement
        codes.append("eps-placement")
    if math.isfinite(eps.default_value) and not math.isclose(eps.default_value, behaviour.eps, rel_tol=0.1):
        changes["eps"] = max(eps.default_value, 0.0)
        codes.append("eps-default")
    return behaviour.but(**changes), tuple(dict.fromkeys(codes))


def unmodelled_deviations(ctx: RunContext) -> tuple[str, ...]:
    """Codes of measured deviations the reference cannot compute (so they explain an output
    mismatch without being applied to the search): a denominator that ignores the variance."""
    try:
        primary = ctx.probe(statistics.structure, ctx.primary_rank)
    except UserCodeError:
        return ()
    per_channel = primary.source == ctx.spec.train_uses and primary.axes == ctx.spec.axes_for_rank(primary.rank)
    return ("norm-variance-estimator",) if per_channel and statistics.denominator_ignores_variance(ctx) else ()
