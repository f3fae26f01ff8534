"""Prerequisite probes: can the class be built, run, and are its tensors findable?"""

from __future__ import annotations

from dataclasses import dataclass

from bnconform.context import RunContext
from bnconform.discover import Discovery, discover, discover_by_behaviour
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


def unmapped_parameters(ctx: RunContext) -> tuple[str, ...]:
    """The module's Parameters mapped to no role, as "name (shape)": a class may pack gamma and
    beta into one tensor, so "no weight or bias found" must not read as "nothing learnable"."""
    module = ctx.build()
    mapped = {slot.name for slot in ctx.probe(found_tensors).slots.values()}
    return ctx.guarded("listing the module's parameters", lambda: tuple(
        f"{name} {tuple(parameter.shape)}" for name, parameter in module.named_parameters() if name not in mapped))


def merge(by_name: Discovery, by_behaviour: Discovery) -> Discovery:
    slots = dict(by_behaviour.slots)
    slots.update(by_name.slots)
    return Discovery(slots)


@dataclass(frozen=True)
class RankSupport:
    accepted: tuple[int, ...]
    rejected: dict[int, str]  # rank -> error


def rank_support(ctx: RunContext) -> RankSupport:
    """The ranks a training forward accepts (see probes.domain)."""
    domain = ctx.domain
    return RankSupport(domain.ranks, domain.rejected)
