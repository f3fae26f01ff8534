"""gradcheck's probes: the implementation's own backward against finite differences in
float64, train and eval mode (a fast directional check by hand in every profile; the full
torch.autograd.gradcheck and gradgradcheck in the thorough one).

They live next to the dtype probes (float64 numerics, modules built in a given dtype) but in
their own module; checks/dtypes.py judges both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from bnconform.context import RunContext
from bnconform.errors import UserCodeError
from bnconform.probes.devices import MEANS, STDS, isolated, prepared_raw, run, step

STEP = 1e-6  # central differences in float64: truncation ~1e-12, rounding ~1e-10
GRAD_ATOL, GRAD_RTOL = 1e-5, 1e-3  # torch.autograd.gradcheck's defaults
# A class computing in float32 inside: rounding ~1e-7 / step must stay small, truncation
# grows with step^2; step 1e-3 keeps both ~1e-4 relative.
FLOAT32_STEP, FLOAT32_ATOL, FLOAT32_RTOL = 1e-3, 1e-3, 1e-2


def differencing(ctx: RunContext) -> tuple[float, float, float]:
    """(step, atol, rtol) for the precision the class computes in (probes.precision)."""
    from bnconform.probes.precision import tolerance_dtype

    if tolerance_dtype(ctx) == torch.float64:
        return STEP, GRAD_ATOL, GRAD_RTOL
    return FLOAT32_STEP, FLOAT32_ATOL, FLOAT32_RTOL


@dataclass(frozen=True)
class GradCheck:
    mode: str  # "train" | "eval"
    wrong: dict[str, str]  # "input" / "weight" / "bias" -> analytic vs numeric


def directional(ctx: RunContext, train: bool) -> GradCheck:
    """torch.autograd.gradcheck's fast mode, by hand: for random u and v, the analytic v^T J u
    (one backward) against the central difference of v^T f along u, per input. Written out
    because autograd.grad with a tensor grad_output imports torch.fx on first use (~0.4 s);
    the thorough profile runs torch.autograd.gradcheck itself (full_gradcheck)."""
    mode = "train" if train else "eval"
    x = ctx.input_with_stats(ctx.primary_rank, MEANS, STDS, salt=340).requires_grad_(True)
    h, atol, rtol = differencing(ctx)
    analytic, numeric = isolated(ctx, f"{mode}-mode gradients", lambda: derivatives(ctx, x, train, h))
    wrong = {name: f"analytic {analytic[name]:.6g}, numeric {numeric[name]:.6g}" for name in numeric
             if not abs(analytic[name] - numeric[name]) <= atol + rtol * abs(numeric[name])}
    return GradCheck(mode, wrong)


def derivatives(
    ctx: RunContext, x: torch.Tensor, train: bool, h: float = STEP
) -> tuple[dict[str, float], dict[str, float]]:
    """Analytic and numerical directional derivatives per differentiable input (inside `isolated`)."""
    module, found = prepared_raw(ctx, str(ctx.device), torch.float64)
    targets = {"input": x}
    targets.update({role: found.get(module, role) for role in ("weight", "bias")
                    if found.has(role) and found.kind(role) == "parameter"})
    g = ctx.generator(341)
    v = torch.randn(x.shape, generator=g, dtype=torch.float64).to(x)
    u = {name: torch.randn(t.shape, generator=g, dtype=torch.float64).to(t) for name, t in targets.items()}

    buffers = [(b, b.detach().clone()) for b in module.buffers()]

    def projected() -> torch.Tensor:
        with torch.no_grad():  # every evaluation starts from the same running statistics
            for buffer, saved in buffers:
                buffer.copy_(saved)
        return (run(module, x, train=train) * v).sum()

    step("backward", lambda: projected().backward())
    analytic = {name: float((t.grad * u[name]).sum()) if t.grad is not None else float("nan")
                for name, t in targets.items()}
    numeric = {name: central_difference(projected, t, u[name], h) for name, t in targets.items()}
    return analytic, numeric


def central_difference(f: Callable[[], torch.Tensor], t: torch.Tensor, u: torch.Tensor, h: float = STEP) -> float:
    """(f(t + h u) - f(t - h u)) / 2h, with grad enabled as in the analytic pass."""
    original = t.detach().clone()
    values = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            t.copy_(original + sign * h * u)
        values.append(float(f().detach()))
    with torch.no_grad():
        t.copy_(original)
    return (values[0] - values[1]) / (2 * h)


@dataclass(frozen=True)
class FullGradCheck:
    gradcheck: dict[str, str]  # mode -> failure ("" passed)
    gradgradcheck: dict[str, str]


def full_gradcheck(ctx: RunContext) -> FullGradCheck:
    """torch.autograd.gradcheck and gradgradcheck (full Jacobians) in train and eval mode."""
    from torch.autograd import gradcheck, gradgradcheck
    from torch.func import functional_call

    module, found = isolated(ctx, "constructing", lambda: prepared_raw(ctx, str(ctx.device), torch.float64))
    x = ctx.input_with_stats(ctx.primary_rank, MEANS, STDS, salt=342).requires_grad_(True)
    roles = [r for r in ("weight", "bias") if found.has(r) and found.kind(r) == "parameter"]
    names = [found.slots[r].name for r in roles]
    params = [found.get(module, r).detach().clone().requires_grad_(True) for r in roles]

    def f(x: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        return functional_call(module, dict(zip(names, ps, strict=True)), (x,))

    first, second = {}, {}
    for train in (True, False):
        mode = "train" if train else "eval"
        module.train(train)
        first[mode] = failure(ctx, f"{mode}-mode gradcheck", lambda: gradcheck(f, (x, *params)))
        second[mode] = failure(ctx, f"{mode}-mode gradgradcheck", lambda: gradgradcheck(f, (x, *params)))
    return FullGradCheck(first, second)


def failure(ctx: RunContext, what: str, fn: Callable[[], object]) -> str:
    """"" when `fn` returns, else the first line of what it raised."""
    try:
        ctx.guarded(what, fn)
    except UserCodeError as error:
        return error.detail
    return ""
