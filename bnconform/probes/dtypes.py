"""Probes of dtype support: every floating dtype, mixed precision and half overflow.

The definition is what torch.nn.BatchNorm does (measured on CPU with torch 2.13): a module
converted to a dtype returns that dtype and keeps its running statistics in it; a float32
module fed float16/bfloat16 input returns the input's dtype and keeps float32 running
statistics; statistics of half inputs are accumulated in float32, so a half input with a
standard deviation of several hundred (squares above float16's 65504) stays finite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bnconform.context import RunContext
from bnconform.discover import Discovery
from bnconform.errors import UserCodeError
from bnconform.probes.devices import (
    MEANS,
    STDS,
    Parity,
    compare,
    isolated,
    prepared_raw,
    run,
    sample,
    snapshot,
    step,
)
from bnconform.reference import RunningState, eval_forward, train_forward

HALF_TYPES = (torch.float16, torch.bfloat16)
FLOATING = (torch.float64, torch.float32, *HALF_TYPES)
WIDE_MEANS, WIDE_STDS = [50.0, -20.0, 10.0], [300.0, 200.0, 400.0]  # x^2 overflows float16


@dataclass(frozen=True)
class Case:
    device: str
    module_dtype: torch.dtype
    input_dtype: torch.dtype
    wide: bool = False  # input std of several hundred

    @property
    def label(self) -> str:
        module = str(self.module_dtype).removeprefix("torch.")
        data = str(self.input_dtype).removeprefix("torch.")
        text = f"{self.device} {module} module" + ("" if data == module else f", {data} input")
        return text + (" (input std 200-400)" if self.wide else "")


@dataclass
class Outcome:
    case: Case
    errors: list[str] = field(default_factory=list)  # wrong values, raising, inf/NaN
    dtypes: list[str] = field(default_factory=list)  # output or buffer in another dtype
    parity: Parity = field(default_factory=lambda: Parity({}, {}, {}))


def cases(device: str) -> list[Case]:
    same = [Case(device, d, d) for d in FLOATING]
    mixed = [Case(device, torch.float32, d) for d in HALF_TYPES]
    wide = [Case(device, torch.float16, torch.float16, True), Case(device, torch.float32, torch.float16, True)]
    return same + mixed + wide


def dtype_support(ctx: RunContext, device: str) -> list[Outcome]:
    return [run_case(ctx, case) for case in cases(device)]


def run_case(ctx: RunContext, case: Case) -> Outcome:
    outcome = Outcome(case)
    try:
        measure(ctx, case, outcome)
    except UserCodeError as error:
        outcome.errors.append(f"{case.label}: {error}")
    return outcome


def measure(ctx: RunContext, case: Case, outcome: Outcome) -> None:
    means, stds = (WIDE_MEANS, WIDE_STDS) if case.wide else (MEANS, STDS)
    x = sample(ctx, case.device, case.input_dtype, salt=320, means=means, stds=stds)
    seen = isolated(ctx, case.label, lambda: collect(ctx, case, x))
    xr, n = x.double().cpu(), x.numel() // ctx.channels
    behaviour = ctx.behaviour()
    expected, new_state = train_forward(behaviour, xr, seen.state, seen.weight, seen.bias)
    compare(ctx, "train output", seen.train, expected, case.input_dtype, n, outcome.parity)
    check_dtype(outcome, "train output", seen.train.dtype, case.input_dtype)
    if new_state is not None and seen.after is not None:
        pairs = (("running_mean", new_state.mean, seen.after.mean), ("running_var", new_state.var, seen.after.var))
        for role, ref, got in pairs:
            compare(ctx, role, got, ref, case.input_dtype, n, outcome.parity)
        outcome.dtypes += [f"{case.label}: {name} is {dtype}, expected {case.module_dtype}"
                           for name, dtype in seen.buffer_dtypes.items() if dtype != case.module_dtype]
        compare(ctx, "eval output", seen.eval, eval_forward(behaviour, xr, seen.after, seen.weight, seen.bias),
                case.input_dtype, n, outcome.parity)  # from the module's own updated statistics
        check_dtype(outcome, "eval output", seen.eval.dtype, case.input_dtype)
    outcome.errors += [f"{case.label}: {name} error {outcome.parity.errors[name]:.3g}"
                       f" > allowed {outcome.parity.allowed[name]:.3g}"
                       for name, ratio in outcome.parity.ratios.items() if not ratio <= 1]


@dataclass
class Seen:
    """What one dtype case observed (collected inside one guarded call)."""

    weight: torch.Tensor | None
    bias: torch.Tensor | None
    state: RunningState | None  # before the step, as stored (rounded to the dtype)
    train: torch.Tensor
    after: RunningState | None = None
    buffer_dtypes: dict[str, torch.dtype] = field(default_factory=dict)
    eval: torch.Tensor | None = None


def collect(ctx: RunContext, case: Case, x: torch.Tensor) -> Seen:
    module, found = prepared_raw(ctx, case.device, case.module_dtype)
    state = stored_state(found, module)
    seen = Seen(snapshot(found, module, "weight"), snapshot(found, module, "bias"), state,
                run(module, x, train=True, what=f"({case.label})"))
    if state is not None:
        seen.after = stored_state(found, module)
        seen.buffer_dtypes = {found.slots[r].name: found.get(module, r).dtype for r in ("running_mean", "running_var")}
        seen.eval = run(module, x, train=False, what=f"({case.label})")
    return seen


def stored_state(found: Discovery, module: torch.nn.Module) -> RunningState | None:
    mean, var = snapshot(found, module, "running_mean"), snapshot(found, module, "running_var")
    return None if mean is None or var is None else RunningState(mean, var)


def check_dtype(outcome: Outcome, what: str, observed: torch.dtype, expected: torch.dtype) -> None:
    if observed != expected:
        outcome.dtypes.append(f"{outcome.case.label}: {what} is {observed}, expected {expected}")


# -- gradients in float64: a finite-difference check of the implementation's own backward --

STEP = 1e-6  # central differences in float64: truncation ~1e-12, rounding ~1e-10
GRAD_ATOL, GRAD_RTOL = 1e-5, 1e-3  # torch.autograd.gradcheck's defaults


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
    analytic, numeric = isolated(ctx, f"{mode}-mode gradients", lambda: derivatives(ctx, x, train))
    wrong = {name: f"analytic {analytic[name]:.6g}, numeric {numeric[name]:.6g}" for name in numeric
             if not abs(analytic[name] - numeric[name]) <= GRAD_ATOL + GRAD_RTOL * abs(numeric[name])}
    return GradCheck(mode, wrong)


def derivatives(ctx: RunContext, x: torch.Tensor, train: bool) -> tuple[dict[str, float], dict[str, float]]:
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
    numeric = {name: central_difference(projected, t, u[name]) for name, t in targets.items()}
    return analytic, numeric


def central_difference(f: Callable[[], torch.Tensor], t: torch.Tensor, u: torch.Tensor) -> float:
    """(f(t + h u) - f(t - h u)) / 2h, with grad enabled as in the analytic pass."""
    original = t.detach().clone()
    values = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            t.copy_(original + sign * STEP * u)
        values.append(float(f().detach()))
    with torch.no_grad():
        t.copy_(original)
    return (values[0] - values[1]) / (2 * STEP)


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
