"""Probes of the module as a model: affine parameters, gradients, state_dict."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from bnconform.context import RunContext
from bnconform.probes.common import (
    BETA,
    GAMMA,
    PLAIN_TENSORS,
    forward,
    per_channel,
    prepare,
    readable,
    relative_error,
)
from bnconform.probes.precision import tolerance_dtype
from bnconform.reference import channel_view, train_forward

OUTPUT_SCALED = "the whole output is scaled (not an affine defect)"
EXACT_TOL = {torch.float64: 1e-9, torch.float32: 1e-5}


@dataclass(frozen=True)
class AffineObservation:
    error: float  # of gamma * y(gamma=1, beta=0) + beta against y(gamma, beta)
    explanation: str  # which wrong formula fits, "" when the right one does
    init_weight: list[float]
    init_bias: list[float]


def affine(ctx: RunContext) -> AffineObservation:
    x = ctx.input_with_stats(ctx.primary_rank, [1.0, -2.0, 0.5], [1.0, 2.0, 0.5], salt=90)
    plain = prepare(ctx, gamma=[1.0], beta=[0.0])
    init_w = plain.discovery.get(ctx.build(), "weight")
    init_b = plain.discovery.get(ctx.build(), "bias")
    y0 = forward(ctx, plain.module, x).double().cpu()
    y1 = forward(ctx, prepare(ctx, gamma=GAMMA, beta=BETA).module, x).double().cpu()
    rank, axis = y0.dim(), ctx.spec.channel_axis
    g = channel_view(per_channel(GAMMA, ctx.channels), rank, axis)
    b = channel_view(per_channel(BETA, ctx.channels), rank, axis)
    if fused_relu(ctx):
        # relu(g * x_hat + b): where y0 = relu(x_hat) > 0 it is x_hat, so y1 is predicted there.
        known = (y0 > 0).expand_as(y1)
        predicted = (g * y0 + b).clamp_min(0)
        error = relative_error(y1[known], predicted.expand_as(y1)[known])
        wrong = "the affine transform before the fused activation is not gamma * x + beta"
        explanation = "" if error <= 1e-6 else wrong
        return AffineObservation(error, explanation, flat(init_w), flat(init_b))
    error = relative_error(y1, g * y0 + b)
    return AffineObservation(error, explain_affine(ctx, x, y1, g, b), flat(init_w), flat(init_b))


def fused_relu(ctx: RunContext) -> bool:
    """The structure probe saw a normalization clipped at 0 (a fused BatchNorm + ReLU)."""
    from bnconform.errors import UserCodeError
    from bnconform.probes.statistics import structure

    try:
        return ctx.probe(structure, ctx.primary_rank).activation == "relu"
    except UserCodeError:
        return False


def explain_affine(ctx: RunContext, x: torch.Tensor, y1: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> str:
    """Which formula maps the spec's x_hat to the observed output ("" = the right one).

    The spec's x_hat, not the module's gamma=1/beta=0 output, because a bug such as
    x_hat * gamma * beta makes that output identically zero.
    """
    x_hat, _ = train_forward(ctx.behaviour(), x.double().cpu(), None)
    candidates = {
        "": g * x_hat + b,
        "gamma and beta are not applied": x_hat,
        "gamma and beta are swapped (beta * x_hat + gamma)": b * x_hat + g,
        "the output is multiplied by beta (x_hat * gamma * beta)": x_hat * g * b,
        "beta is added before scaling ((x_hat + beta) * gamma)": (x_hat + b) * g,
        "only gamma is applied": g * x_hat,
        "only beta is applied": x_hat + b,
    }
    # A stray factor on the whole output also scales beta's contribution; that is not an
    # affine defect, so it gets its own hypothesis and output-mismatch reports it.
    right = candidates[""]
    scale = float((y1 * right).sum() / right.pow(2).sum())
    candidates[OUTPUT_SCALED] = scale * right
    errors = {name: relative_error(y1, value) for name, value in candidates.items()}
    return min(errors, key=errors.__getitem__)


def flat(t: torch.Tensor | None) -> list[float]:
    return [] if t is None else t.detach().double().cpu().reshape(-1).tolist()


@dataclass(frozen=True)
class GradObservation:
    errors: dict[str, float]  # "input" / "weight" / "bias" -> relative error (inf: missing)
    tolerance: float


def gradients(ctx: RunContext, explained: bool = False) -> GradObservation:
    """Input and parameter gradients of a training step against the float64 reference (with
    `explained`: against the spec with the deviations other probes measured applied)."""
    from bnconform.probes.explained import explained_behaviour

    behaviour = explained_behaviour(ctx)[0] if explained else ctx.behaviour()
    prep = prepare(ctx, gamma=GAMMA, beta=BETA)
    x = ctx.input_with_stats(ctx.primary_rank, [1.0, -2.0, 0.5], [1.0, 2.0, 0.5], salt=100).requires_grad_(True)
    upstream = torch.randn(x.shape, generator=ctx.generator(101), dtype=torch.float64)

    def step() -> None:
        prep.module.train()
        (prep.module(x) * upstream.to(x)).sum().backward()

    # The parameters the step ran with: a class may rebind (or drop) them during the step, and the
    # gradient is on the tensors it used, not on what the attribute holds afterwards.
    params = {role: prep.discovery.get(prep.module, role) for role in ("weight", "bias")}
    ctx.guarded("train-mode backward", step)
    xr = x.detach().double().cpu().requires_grad_(True)
    w = per_channel(GAMMA, ctx.channels).requires_grad_(True)
    b = per_channel(BETA, ctx.channels).requires_grad_(True)
    y_ref, _ = train_forward(behaviour, xr, None, w, b)
    (y_ref * upstream).sum().backward()
    errors = {"input": grad_error(x.grad, xr.grad)}
    for role, ref in (("weight", w.grad), ("bias", b.grad)):
        t = params[role]
        if prep.discovery.kind(role) == "parameter" and type(t) in PLAIN_TENSORS:
            errors[role] = grad_error(readable(t.grad), ref)
    return GradObservation(errors, 1e-6 if tolerance_dtype(ctx) == torch.float64 else 1e-3)


def grad_error(observed: torch.Tensor | None, expected: torch.Tensor) -> float:
    if observed is None or observed.numel() != expected.numel():
        return float("inf")
    return relative_error(observed.reshape(expected.shape), expected)


@dataclass(frozen=True)
class StateDictObservation:
    round_trip: str  # "" when the state_dict round-trips, else what went wrong
    interop: str  # "" when it loads into and from torch.nn.BatchNorm, "n/a", else the problem


def state_dict(ctx: RunContext) -> StateDictObservation:
    trained = trained_module(ctx)
    x = ctx.input_with_stats(ctx.primary_rank, [0.0, 1.0, -1.0], [1.0, 1.0, 1.0], salt=110)
    # Saved before the eval forward, so both modules start from the same state even if eval mutates it.
    saved = ctx.guarded("state_dict()", lambda: copy.deepcopy(trained.state_dict()))
    y = forward(ctx, trained, x, train=False)
    round_trip = compare_loaded(ctx, ctx.build(), saved, x, y)
    interop = "n/a"
    if ctx.spec.state_dict_interop == "torch.nn.BatchNorm" and ctx.spec.channel_axis == 1:
        interop = torch_interop(ctx, saved, x.dim())
    return StateDictObservation(round_trip, interop)


def trained_module(ctx: RunContext) -> torch.nn.Module:
    module = prepare(ctx, gamma=GAMMA, beta=BETA).module
    for salt in (111, 112):
        forward(ctx, module, ctx.input_with_stats(ctx.primary_rank, [2.0, -1.0, 0.5], [2.0, 0.5, 1.0], salt=salt))
    return module


def compare_loaded(ctx: RunContext, fresh: torch.nn.Module, saved: dict, x: torch.Tensor, y: torch.Tensor) -> str:
    try:
        ctx.guarded("load_state_dict()", lambda: fresh.load_state_dict(saved))
        y2 = forward(ctx, fresh, x, train=False)
    except Exception as error:  # noqa: BLE001 - reported as the observation
        return str(error)
    error = relative_error(y2, y)
    return (
        ""
        if error <= EXACT_TOL.get(tolerance_dtype(ctx), 1e-5)
        else f"eval output after loading differs (relative error {error:.2g})"
    )


def torch_interop(ctx: RunContext, saved: dict, rank: int) -> str:
    """Loads into torch.nn.BatchNorm and back with every tensor intact (values, not outputs:
    output differences are the other checks' business)."""
    cls = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d, 5: torch.nn.BatchNorm3d}[rank]
    reference = cls(ctx.channels).to(ctx.device, ctx.dtype)
    try:
        reference.load_state_dict(saved)
    except Exception as error:  # noqa: BLE001
        return f"{cls.__name__}.load_state_dict(yours) fails: {first_line(error)}"
    # Keys torch fills in itself when a checkpoint lacks them (num_batches_tracked = 0, as for
    # an old-format checkpoint) are not a difference: compare what the class saved.
    loaded = {k: v for k, v in reference.state_dict().items() if k in saved}
    if not same_tensors(loaded, saved):
        return f"{cls.__name__} loaded from your state_dict holds different values"
    yours = ctx.build()
    try:
        ctx.guarded("load_state_dict()", lambda: yours.load_state_dict(reference.state_dict()))
    except Exception as error:  # noqa: BLE001
        return f"yours.load_state_dict({cls.__name__}) fails: {first_line(error)}"
    mine = ctx.guarded("state_dict()", yours.state_dict)
    theirs = {k: v for k, v in reference.state_dict().items() if k in mine}  # keys it does not keep: fine
    return "" if same_tensors(mine, theirs) else f"loading {cls.__name__}'s state_dict changes values"


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k].detach().cpu().double().reshape(-1), b[k].detach().cpu().double().reshape(-1)) for k in a
    )


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
