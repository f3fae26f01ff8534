"""Training outputs against the spec's reference on inputs drawn by hypothesis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from bnconform.context import RunContext
from bnconform.errors import UserCodeError
from bnconform.probes.common import affine_values, forward, prepare
from bnconform.probes.explained import explained_behaviour, unmodelled_deviations
from bnconform.probes.precision import tolerance_dtype
from bnconform.reference import Behaviour, train_forward
from bnconform.registry import Verdict, check, failed, passed
from bnconform.search_determinism import without_local_constants

EXAMPLES = {"default": 20, "thorough": 200}


@dataclass(frozen=True)
class Case:
    shape: tuple[int, ...]  # channels-first
    means: list[float]
    stds: list[float]
    gamma: list[float]
    beta: list[float]
    salt: int


def cases(ranks: tuple[int, ...], channels: int, batches: list[int]) -> st.SearchStrategy[Case]:
    per_channel = st.lists(st.floats(-5, 5, allow_nan=False), min_size=channels, max_size=channels)
    spreads = st.lists(st.floats(0.1, 5, allow_nan=False), min_size=channels, max_size=channels)

    @st.composite
    def draw(draw_: Any) -> Case:
        rank = draw_(st.sampled_from(ranks))
        spatial = [draw_(st.integers(1, 3)) for _ in range(rank - 2)]
        shape = (draw_(st.sampled_from(batches)), channels, *spatial)
        return Case(
            shape,
            draw_(per_channel),
            draw_(spreads),
            draw_(per_channel),
            draw_(per_channel),
            draw_(st.integers(0, 2**16)),
        )

    return draw()


@dataclass
class Comparison:
    error: float  # largest |observed - expected| / allowed; > 1 fails
    expected: torch.Tensor
    observed: torch.Tensor


def compare(ctx: RunContext, case: Case, behaviour: Behaviour | None = None) -> Comparison:
    prep = prepare(ctx, len(case.shape), gamma=case.gamma, beta=case.beta)
    z = torch.randn(case.shape, generator=ctx.generator(case.salt), dtype=torch.float64)
    view = [1] * len(case.shape)
    view[1] = -1
    x = ctx.to_layout(torch.tensor(case.means).reshape(view) + torch.tensor(case.stds).reshape(view) * z)
    x = x.to(ctx.device, ctx.dtype)
    given = affine_values(prep.discovery, prep.module, ctx.channels)
    y = forward(ctx, prep.module, x).detach().double().cpu()
    # As stored after the step (the module may round them); as given when the step dropped,
    # emptied or resized them, since the forward ran with what it was given.
    after = affine_values(prep.discovery, prep.module, ctx.channels)
    weight, bias = (now if now is not None else then for now, then in zip(after, given, strict=True))
    expected, _ = train_forward(behaviour or ctx.behaviour(), x.double().cpu(), None, weight, bias)
    if y.shape != expected.shape or not torch.isfinite(y).all():
        return Comparison(float("inf"), expected, y)
    working = tolerance_dtype(ctx)  # a class computing in float32 inside is judged as float32
    tol = ctx.spec.tolerance(str(working))
    rounding = 16 * torch.finfo(working).eps * conditioning(x, ctx.spec.channel_axis)
    allowed = tol.atol + tol.rtol * expected.abs() + rounding
    return Comparison(float(((y - expected).abs() / allowed).max()), expected, y)


def conditioning(x: torch.Tensor, channel_axis: int) -> float:
    """max |x| / std within a channel, over the channels, plus one: how much rounding of x the
    normalization amplifies. Per channel: channels far apart with small spreads inflate the
    spread of the whole tensor, not the rounding error of each channel's x - mean."""
    per_channel = x.detach().double().cpu().movedim(channel_axis, 0).reshape(x.shape[channel_axis], -1)
    ratio = per_channel.abs().amax(dim=1) / per_channel.std(dim=1, correction=0).clamp_min(1e-12)
    return float(ratio.max()) + 1.0


@check(
    "output-mismatch",
    area="normalization",
    title="Training outputs match the spec's reference on generated inputs",
    severity="error",
    why="The output differs from the spec's BatchNorm in a way no more specific check explains: the model"
    " computes something else than it claims.",
    hint="Run the reproduction (the minimal failing input) and compare your forward with the spec's"
    " formula step by step.",
    requires=("forward-failed",),
)
def output_mismatch(ctx: RunContext) -> Verdict:
    """Searched first against the spec with every measured deviation applied: a difference that
    remains is this check's own finding; one that does not is a consequence of those findings."""
    explained, codes = explained_behaviour(ctx)
    if codes:
        failure = search(ctx, explained)
        if failure:
            return mismatch(ctx, failure, unexplained_after=codes)
    failure = search(ctx, ctx.behaviour())
    if failure:
        return mismatch(ctx, failure, explained_by=codes + unmodelled_deviations(ctx))
    return passed(examples=EXAMPLES.get(ctx.settings.profile, 20))


def search(ctx: RunContext, behaviour: Behaviour) -> dict[str, Any]:
    """The minimal generated case whose output differs from `behaviour`'s ({} when none does)."""
    domain = ctx.domain
    failure: dict[str, Any] = {}

    @settings(
        max_examples=EXAMPLES.get(ctx.settings.profile, 20),
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        report_multiple_bugs=False,
    )
    @seed(ctx.settings.seed)
    @given(cases(domain.ranks, ctx.channels, accepted_batches(domain)))
    def matches_reference(case: Case) -> None:
        if "hang" in failure:
            return  # one hang is enough; the rest of the search would only wait again
        try:
            result = compare(ctx, case, behaviour)
        except UserCodeError as error:
            if error.kind == "timeout":
                failure["hang"] = error
                return
            failure.update(case=case, error=str(error))
            raise AssertionError(str(error)) from None
        if result.error > 1:
            failure.update(case=case, comparison=result)
            raise AssertionError(f"error ratio {result.error}")

    try:
        with without_local_constants():
            matches_reference()
    except AssertionError:
        return failure
    if "hang" in failure:
        raise failure["hang"]  # a hang is forward-failed, not an output mismatch
    return {}


def accepted_batches(domain: Any) -> list[int]:
    """Generated batch sizes the class accepts (a batch-size constraint is its own finding)."""
    return [n for n in (2, 3, 4) if n not in domain.batch_rejected] or [domain.batch]


def mismatch(
    ctx: RunContext,
    failure: dict[str, Any],
    explained_by: tuple[str, ...] = (),
    unexplained_after: tuple[str, ...] = (),
) -> Verdict:
    case: Case = failure["case"]
    described = (
        f"shape {list(case.shape)}, channel means {rounded(case.means)}, stds {rounded(case.stds)},"
        f" gamma {rounded(case.gamma)}, beta {rounded(case.beta)}"
    )
    if "error" in failure:
        return failed(
            f"Forward raised on a generated input ({described}): {failure['error']}",
            expected="a finite output",
            observed=failure["error"],
            repro=repro(ctx, case),
        )
    comparison: Comparison = failure["comparison"]
    worst = float((comparison.observed - comparison.expected).abs().max())
    after = f" even with {', '.join(unexplained_after)} as measured" if unexplained_after else ""
    from bnconform.probes.model import fused_relu

    if fused_relu(ctx):
        after += " (the output is clipped at 0: an activation is fused into the layer)"
    return failed(
        f"Training output differs from the reference{after} on the minimal input {described}",
        expected="output within the spec's tolerance of the reference",
        observed=f"max abs difference {worst:.3g} ({comparison.error:.3g} x the allowed error)",
        repro=repro(ctx, case),
        details={
            "expected_values": comparison.expected.reshape(-1)[:200].tolist(),
            "observed_values": comparison.observed.reshape(-1)[:200].tolist(),
            "explained_by": list(explained_by),
            "accounted_for": list(unexplained_after),
        },
    )


def rounded(values: list[float]) -> list[float]:
    return [round(v, 3) for v in values]


def repro(ctx: RunContext, case: Case) -> str:
    """The case's input, gamma and beta, and the spec's formula next to the module's output."""
    from bnconform.repro import attr, snippet

    rank, spec = len(case.shape), ctx.spec
    first = [1] * rank
    first[1] = -1
    view = [1] * rank
    view[spec.channel_axis] = -1
    body = [
        f"z = torch.randn({case.shape}, generator=torch.Generator().manual_seed({seed_of(ctx, case.salt)}),"
        " dtype=torch.float64)",
        f"x = torch.tensor({case.means}).reshape({first}) + torch.tensor({case.stds}).reshape({first}) * z",
    ]
    if spec.channel_axis == -1:
        body.append("x = x.movedim(1, -1).contiguous()")
    for role, values in (("weight", case.gamma), ("bias", case.beta)):
        if found_role(ctx, role):
            name = attr(ctx, role, role)
            body.append(f"with torch.no_grad(): {name}.copy_(torch.tensor({values}, dtype=torch.float64)"
                        f".reshape({name}.shape))")
    denominator = "(var.sqrt() + eps)" if spec.eps_placement == "outside-sqrt" else "torch.sqrt(var + eps)"
    axes = spec.axes_for_rank(rank)
    body += [
        "bn.train()",
        "y = bn(x)",
        f"gamma, beta = torch.tensor({case.gamma}).reshape({view}), torch.tensor({case.beta}).reshape({view})",
        f"mean = x.mean(dim={axes}, keepdim=True)",
        f"var = x.var(dim={axes}, unbiased={spec.norm_variance == 'unbiased'}, keepdim=True)",
        f"eps = {spec.eps!r}",
        f"expected = gamma * (x - mean) / {denominator} + beta  # the {spec.name} spec's training output",
        "print('max abs difference:', (y - expected).abs().max().item())",
    ]
    return snippet(ctx, body)


def found_role(ctx: RunContext, role: str) -> bool:
    from bnconform.probes.basics import found_tensors

    return ctx.probe(found_tensors).has(role)


def seed_of(ctx: RunContext, salt: int) -> int:
    """The seed of ctx.generator(salt): the repro draws the very input the check compared."""
    return int(ctx.generator(salt).initial_seed())
