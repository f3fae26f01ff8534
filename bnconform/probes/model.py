"""Probes of the module as a model: affine parameters, gradients, state_dict."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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
UNEXPLAINED = "no common mistake (gamma or beta missing, swapped or misordered) fits it"
# A hypothesis is named only when it fits (the spec's x_hat may differ from the class's by an
# estimator: 13% at 4 values per channel) and fits clearly better than the next (hypotheses
# differ by 40% or more on the probe's data); otherwise the nearest would be a guessed cause.
HYPOTHESIS_FIT = 0.2
HYPOTHESIS_MARGIN = 2.0
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
    best, runner_up = sorted(errors.values())[:2]
    if not (best <= HYPOTHESIS_FIT and runner_up >= HYPOTHESIS_MARGIN * best):
        return UNEXPLAINED
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
    # Roles prepare could not find were not set: the class runs with its own (identity at init).
    gamma, beta = (GAMMA if prep.discovery.has("weight") else [1.0]), (BETA if prep.discovery.has("bias") else [0.0])
    w = per_channel(gamma, ctx.channels).requires_grad_(True)
    b = per_channel(beta, ctx.channels).requires_grad_(True)
    y_ref, _ = train_forward(behaviour, xr, None, w, b)
    (y_ref * upstream).sum().backward()
    errors = {"input": grad_error(x.grad, xr.grad)}
    for role, ref in (("weight", w.grad), ("bias", b.grad)):
        t = params[role]
        if prep.discovery.has(role) and prep.discovery.kind(role) == "parameter" and type(t) in PLAIN_TENSORS:
            errors[role] = grad_error(readable(t.grad), ref)
    return GradObservation(errors, 1e-6 if tolerance_dtype(ctx) == torch.float64 else 1e-3)


def grad_error(observed: torch.Tensor | None, expected: torch.Tensor) -> float:
    if observed is None or observed.numel() != expected.numel():
        return float("inf")
    return relative_error(observed.reshape(expected.shape), expected)


@dataclass(frozen=True)
class KeyDifference:
    """What one module's load_state_dict objects to in a state_dict, by torch's own rules."""

    missing: tuple[str, ...] = ()  # keys the loading module expects and the state_dict lacks
    unexpected: tuple[str, ...] = ()  # keys of the state_dict the loading module does not know
    mis_shaped: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()  # (key, saved, expected)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.mis_shaped)

    def describe(self, saved_by: str, loaded_by: str) -> str:
        parts = [f"{label} {', '.join(keys)}" for label, keys in (("missing", self.missing),
                                                                  ("unexpected", self.unexpected)) if keys]
        parts += [f"{key} has shape {tuple(got)} in {saved_by}, {tuple(want)} in {loaded_by}"
                  for key, got, want in self.mis_shaped]
        return "; ".join(parts)


@dataclass(frozen=True)
class StateDictObservation:
    round_trip: str  # "" when the state_dict round-trips, else what went wrong
    interop: str  # "" when it loads into and from torch.nn.BatchNorm, "n/a", else the problem
    # When a load between the class and torch.nn.BatchNorm fails: which module loaded ("torch":
    # torch's loaded the class's state_dict; "yours": the class loaded torch's) and what it
    # objected to (None when not measured).
    interop_loader: str = ""
    interop_keys: KeyDifference | None = None


def state_dict(ctx: RunContext) -> StateDictObservation:
    trained = trained_module(ctx)
    x = ctx.input_with_stats(ctx.primary_rank, [0.0, 1.0, -1.0], [1.0, 1.0, 1.0], salt=110)
    # Saved before the eval forward, so both modules start from the same state even if eval mutates it.
    saved = ctx.guarded("state_dict()", lambda: copy.deepcopy(trained.state_dict()))
    y = forward(ctx, trained, x, train=False)
    round_trip = compare_loaded(ctx, ctx.build(), saved, x, y)
    if ctx.spec.state_dict_interop == "torch.nn.BatchNorm" and ctx.spec.channel_axis == 1:
        return StateDictObservation(round_trip, *torch_interop(ctx, saved, x.dim()))
    return StateDictObservation(round_trip, "n/a")


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


def torch_interop(ctx: RunContext, saved: dict, rank: int) -> tuple[str, str, KeyDifference | None]:
    """Loads into torch.nn.BatchNorm and back with every tensor intact (values, not outputs:
    output differences are the other checks' business). A load that fails says which keys the
    loading module objected to (missing, unexpected, mis-shaped), with which module loaded."""
    cls = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d, 5: torch.nn.BatchNorm3d}[rank]
    name = cls.__name__
    reference = cls(ctx.channels).to(ctx.device, ctx.dtype)
    try:
        reference.load_state_dict(saved)
    except Exception as error:  # noqa: BLE001
        keys = key_difference(lambda: cls(ctx.channels).to(ctx.device, ctx.dtype), saved)
        said = keys.describe("yours", name) if keys else first_line(error)
        return f"{name}.load_state_dict(yours) fails: {said}", "torch", keys
    # Keys torch fills in itself when a checkpoint lacks them (num_batches_tracked = 0, as for
    # an old-format checkpoint) are not a difference: compare what the class saved.
    loaded = {k: v for k, v in reference.state_dict().items() if k in saved}
    if not same_tensors(loaded, saved):
        return f"{name} loaded from your state_dict holds different values", "", None
    yours = ctx.build()
    theirs_saved = reference.state_dict()
    try:
        ctx.guarded("load_state_dict()", lambda: yours.load_state_dict(theirs_saved))
    except Exception as error:  # noqa: BLE001
        keys = key_difference(ctx.build, theirs_saved, ctx)
        said = keys.describe(name, "yours") if keys else first_line(error)
        return f"yours.load_state_dict({name}) fails: {said}", "yours", keys
    mine = ctx.guarded("state_dict()", yours.state_dict)
    theirs = {k: v for k, v in reference.state_dict().items() if k in mine}  # keys it does not keep: fine
    return ("" if same_tensors(mine, theirs) else f"loading {name}'s state_dict changes values"), "", None


def key_difference(build: Callable[[], torch.nn.Module], saved: Mapping[str, Any],
                   ctx: RunContext | None = None) -> KeyDifference:
    """What `fresh.load_state_dict(saved)` objects to, by torch's own rules: shapes key by key
    (a 1-d value loads into a 0-d tensor, as torch allows), then the keys of a non-strict load of
    the rest, which runs the loading module's own hooks (torch.nn.BatchNorm fills in a
    num_batches_tracked that an old-format state_dict lacks: not a difference). With `ctx`,
    the loading module is user code and every call into it is guarded. Falls back to comparing
    the key sets when that load raises."""

    def call(what: str, fn: Callable[..., Any], *args: Any) -> Any:
        return ctx.guarded(what, fn, *args) if ctx is not None else fn(*args)

    try:
        fresh = build()
        expected = call("state_dict()", fresh.state_dict)
    except Exception:  # noqa: BLE001 - nothing to compare against
        return KeyDifference()
    mis_shaped = tuple(
        (key, tuple(value.shape), tuple(expected[key].shape))
        for key, value in saved.items()
        if key in expected and isinstance(value, torch.Tensor) and isinstance(expected[key], torch.Tensor)
        and not loads_as_shaped(value, expected[key])
    )
    shaped = {key for key, _, _ in mis_shaped}
    rest = OrderedDict((k, v) for k, v in saved.items() if k not in shaped)
    metadata = getattr(saved, "_metadata", None)
    if metadata is not None:
        rest._metadata = metadata  # type: ignore[attr-defined]  # the format version the hooks read
    try:
        result = call("load_state_dict()", fresh.load_state_dict, rest, False)
        missing = tuple(k for k in result.missing_keys if k not in shaped)
        unexpected = tuple(result.unexpected_keys)
    except Exception:  # noqa: BLE001 - a value torch cannot copy, a hook that raises: the key sets
        missing = tuple(k for k in expected if k not in saved)
        unexpected = tuple(k for k in saved if k not in expected)
    return KeyDifference(missing, unexpected, mis_shaped)


def loads_as_shaped(value: torch.Tensor, expected: torch.Tensor) -> bool:
    """torch's shape rule in _load_from_state_dict: equal shapes, or a 1-d value for a 0-d tensor."""
    return value.shape == expected.shape or (expected.dim() == 0 and value.dim() == 1)


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k].detach().cpu().double().reshape(-1), b[k].detach().cpu().double().reshape(-1)) for k in a
    )


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
