"""Probes of the module as a model: affine parameters, gradients, state_dict."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bnconform.context import RunContext
from bnconform.probes.common import BETA, GAMMA, forward, per_channel, prepare, relative_error
from bnconform.reference import Behaviour, channel_view, train_forward

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
    candidates = {
        "": g * y0 + b,
        "gamma and beta are not applied": y0,
        "gamma and beta are swapped (beta * x_hat + gamma)": b * y0 + g,
        "the output is multiplied by beta (x_hat * gamma * beta)": y0 * g * b,
        "beta is added before scaling ((x_hat + beta) * gamma)": (y0 + b) * g,
        "only gamma is applied": g * y0,
        "only beta is applied": y0 + b,
    }
    errors = {name: relative_error(y1, value) for name, value in candidates.items()}
    best = min(errors, key=errors.__getitem__)
    return AffineObservation(errors[""], best, flat(init_w), flat(init_b))


def flat(t: torch.Tensor | None) -> list[float]:
    return [] if t is None else t.detach().double().cpu().reshape(-1).tolist()


@dataclass(frozen=True)
class GradObservation:
    errors: dict[str, float]  # "input" / "weight" / "bias" -> relative error (inf: missing)
    tolerance: float


def gradients(ctx: RunContext) -> GradObservation:
    """Input and parameter gradients of a training step against the float64 reference."""
    prep = prepare(ctx, gamma=GAMMA, beta=BETA)
    x = ctx.input_with_stats(ctx.primary_rank, [1.0, -2.0, 0.5], [1.0, 2.0, 0.5], salt=100).requires_grad_(True)
    upstream = torch.randn(x.shape, generator=ctx.generator(101), dtype=torch.float64)

    def step() -> None:
        prep.module.train()
        (prep.module(x) * upstream.to(x)).sum().backward()

    ctx.guarded("train-mode backward", step)
    xr = x.detach().double().cpu().requires_grad_(True)
    w = per_channel(GAMMA, ctx.channels).requires_grad_(True)
    b = per_channel(BETA, ctx.channels).requires_grad_(True)
    y_ref, _ = train_forward(Behaviour.from_spec(ctx.spec), xr, None, w, b)
    (y_ref * upstream).sum().backward()
    errors = {"input": grad_error(x.grad, xr.grad)}
    for role, ref in (("weight", w.grad), ("bias", b.grad)):
        if prep.discovery.kind(role) == "parameter":
            errors[role] = grad_error(prep.discovery.get(prep.module, role).grad, ref)
    return GradObservation(errors, 1e-6 if ctx.dtype == torch.float64 else 1e-3)


def grad_error(observed: torch.Tensor | None, expected: torch.Tensor) -> float:
    return float("inf") if observed is None else relative_error(observed.reshape(expected.shape), expected)


@dataclass(frozen=True)
class StateDictObservation:
    round_trip: str  # "" when the state_dict round-trips, else what went wrong
    interop: str  # "" when it loads into and from torch.nn.BatchNorm, "n/a", else the problem


def state_dict(ctx: RunContext) -> StateDictObservation:
    trained = trained_module(ctx)
    x = ctx.input_with_stats(ctx.primary_rank, [0.0, 1.0, -1.0], [1.0, 1.0, 1.0], salt=110)
    y = forward(ctx, trained, x, train=False)
    saved = ctx.guarded("state_dict()", trained.state_dict)
    round_trip = compare_loaded(ctx, ctx.build(), saved, x, y)
    interop = "n/a"
    if ctx.spec.state_dict_interop == "torch.nn.BatchNorm" and ctx.spec.channel_axis == 1:
        interop = torch_interop(ctx, saved, x, y)
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
    return "" if error <= EXACT_TOL.get(ctx.dtype, 1e-5) else f"eval output after loading differs (relative error {error:.2g})"


def torch_interop(ctx: RunContext, saved: dict, x: torch.Tensor, y: torch.Tensor) -> str:
    cls = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d, 5: torch.nn.BatchNorm3d}[x.dim()]
    reference = cls(ctx.channels).to(ctx.device, ctx.dtype)
    try:
        reference.load_state_dict(saved)
    except Exception as error:  # noqa: BLE001
        return f"{cls.__name__}.load_state_dict(yours) fails: {first_line(error)}"
    reference.eval()
    with torch.no_grad():
        if relative_error(reference(x), y) > EXACT_TOL.get(ctx.dtype, 1e-5):
            return f"{cls.__name__} loaded from your state_dict gives a different eval output"
    problem = compare_loaded(ctx, ctx.build(), reference.state_dict(), x, y)
    return "" if not problem else f"yours.load_state_dict({cls.__name__}) fails: {problem}"


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
