"""Probes of dtype support: every floating dtype, mixed precision and half overflow.

The definition is what torch.nn.BatchNorm does (measured on CPU with torch 2.13): a module
converted to a dtype returns that dtype and keeps its running statistics in it; a float32
module fed float16/bfloat16 input returns the input's dtype and keeps float32 running
statistics; statistics of half inputs are accumulated in float32, so a half input with a
standard deviation of several hundred (squares above float16's 65504) stays finite.

Half types are swept over activation scales (std 10 ... 1000, a large mean offset); each
scale also runs through torch.nn.functional.batch_norm, judged the same way, so a report
can say how far the class gets next to torch, and a limit torch shares is no finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from bnconform.context import RunContext
from bnconform.discover import Discovery
from bnconform.errors import UserCodeError
from bnconform.probes.common import BETA, FAR_MEANS, FAR_VARS, GAMMA, PLAIN_TENSORS, per_channel
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
)
from bnconform.reference import Behaviour, RunningState, eval_forward, train_forward

HALF_TYPES = (torch.float16, torch.bfloat16)
FLOATING = (torch.float64, torch.float32, *HALF_TYPES)


@dataclass(frozen=True)
class Scale:
    """One activation scale of the sweep: per-channel means and standard deviations."""

    label: str  # "std 100", "mean 1000"
    means: tuple[float, ...]
    stds: tuple[float, ...]
    ordinary: bool  # activations this large are normal in training: failing here is an error


BASE = Scale("std 1", tuple(MEANS), tuple(STDS), True)
# Ascending: the first failing scale is "where it breaks". float16's largest value is 65504,
# so x^2 overflows from |x| ~ 256 and a variance from std ~ 256: std <= 100 must work (error),
# beyond it is an edge of the format (warning), judged next to torch.nn.BatchNorm.
# Every channel at the labelled std, and a batch large enough (SWEEP_BATCH) that ordinary
# data's 2.5-3 sigma values occur in each: code that squares deviations in half precision
# overflows at std 100 on such values, as it would in training.
SWEEP = (
    Scale("std 10", (5.0, -10.0, 20.0), (10.0, 10.0, 10.0), True),
    Scale("std 100", (50.0, -20.0, 10.0), (100.0, 100.0, 100.0), True),
    Scale("std 300", (50.0, -20.0, 10.0), (300.0, 300.0, 300.0), False),
    Scale("std 1000", (100.0, -50.0, 20.0), (1000.0, 1000.0, 1000.0), False),
    Scale("mean 1000", (1000.0, -500.0, 250.0), (1.0, 2.0, 0.5), False),
)
SWEEP_BATCH = 16
# (module dtype, input dtype) pairs swept over SWEEP: half storage, and float32 modules fed
# half inputs (autocast-style mixed precision).
SWEPT = ((torch.float16, torch.float16), (torch.float32, torch.float16), (torch.bfloat16, torch.bfloat16))


@dataclass(frozen=True)
class Case:
    device: str
    module_dtype: torch.dtype
    input_dtype: torch.dtype
    scale: Scale = BASE

    @property
    def label(self) -> str:
        module = str(self.module_dtype).removeprefix("torch.")
        data = str(self.input_dtype).removeprefix("torch.")
        text = f"{self.device} {module} module" + ("" if data == module else f", {data} input")
        return text + ("" if self.scale is BASE else f" (input {self.scale.label})")

    @property
    def pair(self) -> str:
        """The dtype pair without device or scale ("float16", "float32 module, float16 input")."""
        module = str(self.module_dtype).removeprefix("torch.")
        data = str(self.input_dtype).removeprefix("torch.")
        return module if data == module else f"{module} module, {data} input"


@dataclass
class Outcome:
    case: Case
    errors: list[str] = field(default_factory=list)  # wrong values, raising, inf/NaN
    dtypes: list[str] = field(default_factory=list)  # output or buffer in another dtype
    parity: Parity = field(default_factory=lambda: Parity({}, {}, {}))
    torch_ok: bool = True  # torch.nn.BatchNorm handles this case (judged the same way)
    raised: bool = False  # errors is the one call that raised: no values were compared


def cases(device: str) -> list[Case]:
    same = [Case(device, d, d) for d in FLOATING]
    mixed = [Case(device, torch.float32, d) for d in HALF_TYPES]
    return same + mixed


def sweep_cases(device: str) -> list[Case]:
    return [Case(device, m, i, scale) for m, i in SWEPT for scale in SWEEP]


def dtype_support(ctx: RunContext, device: str) -> list[Outcome]:
    """Every dtype at ordinary scale, then the half types over the activation-scale sweep."""
    outcomes = [run_case(ctx, case) for case in cases(device)]
    for case in sweep_cases(device):
        if ctx.spec.variance_algorithm == "fast" and case.scale.label.startswith("mean"):
            continue  # E[x^2] - E[x]^2 cancels at a large mean by the spec's own convention
        outcome = run_case(ctx, case)
        outcome.torch_ok = torch_handles(ctx, case)
        outcomes.append(outcome)
    return outcomes


def run_case(ctx: RunContext, case: Case) -> Outcome:
    outcome = Outcome(case)
    try:
        measure(ctx, case, outcome)
    except UserCodeError as error:
        from bnconform.probes.devices import raises_natively

        train = not error.what.startswith("eval")
        # One guarded call: a forward that hangs is stopped after its timeout (and one that hung
        # before fails fast), not after the supervisor's idle limit for bnconform's own code.
        label = f"{'train' if train else 'eval'}-mode forward"
        if "forward" in error.what and isolated(ctx, label, lambda: raises_natively(ctx, train=train)):
            raise  # the forward raises in the probes' own dtype too: forward-failed, not a dtype problem
        outcome.errors.append(f"{case.label}: {error}")
        outcome.raised = True
    return outcome


def case_input(ctx: RunContext, case: Case) -> torch.Tensor:
    batch = 4 if case.scale is BASE else SWEEP_BATCH
    return sample(ctx, case.device, case.input_dtype, salt=320, batch=batch, means=list(case.scale.means),
                  stds=list(case.scale.stds))


def measure(ctx: RunContext, case: Case, outcome: Outcome) -> None:
    """The case against the class's OWN result in the probes' precision, from the same stored
    values: dtype-support is about what precision changes, not about whether the class
    follows the spec (the other checks judge that, and would be blamed on the dtype here)."""
    x = case_input(ctx, case)
    seen = isolated(ctx, case.label, lambda: collect(ctx, case, x))
    own = isolated(ctx, f"{case.label}, in {ctx.dtype}", lambda: own_precise(ctx, case, x, seen))
    judge_seen(ctx, case, seen, own, outcome, x.numel() // ctx.channels)


def own_precise(ctx: RunContext, case: Case, x: torch.Tensor, seen: Seen) -> Seen:
    """The same steps on a module in the probes' dtype holding the case's stored values."""
    module, found = prepared_raw(ctx, case.device, ctx.dtype)
    stored = {"weight": seen.weight, "bias": seen.bias}
    if seen.state is not None:
        stored |= {"running_mean": seen.state.mean, "running_var": seen.state.var}
    for role, value in stored.items():
        if value is not None and found.has(role):
            found.set(module, role, value)
    precise = x.to(ctx.dtype)
    own = Seen(seen.weight, seen.bias, seen.state, run(module, precise, train=True, what=f"(in {ctx.dtype})"))
    if seen.state is not None:
        own.after = stored_state(found, module)
        if not (same_sizes(seen.state, seen.after) and same_sizes(seen.state, own.after)):
            # A statistic is unreadable or resized after the step (dropped, emptied, moved to meta):
            # no eval from the same values can be run, and one from other values would blame the dtype.
            return own
        found.set(module, "running_mean", seen.after.mean)  # eval from the case's own updated
        found.set(module, "running_var", seen.after.var)  # (maybe overflowed) statistics
        own.eval = run(module, precise, train=False, what=f"(in {ctx.dtype})")
    return own


def judge_seen(ctx: RunContext, case: Case, seen: Seen, own: Seen, outcome: Outcome, n: int) -> None:
    compare(ctx, "train output", seen.train, own.train, case.input_dtype, n, outcome.parity)
    check_dtype(outcome, "train output", seen.train.dtype, case.input_dtype)
    if own.after is not None and seen.after is not None:
        for role in ("mean", "var"):
            compare(ctx, f"running_{role}", getattr(seen.after, role), getattr(own.after, role),
                    case.input_dtype, n, outcome.parity)
        outcome.dtypes += [f"{case.label}: {name} is {dtype}, expected {case.module_dtype}"
                           for name, dtype in seen.buffer_dtypes.items() if dtype != case.module_dtype]
    if own.eval is not None and seen.eval is not None:
        compare(ctx, "eval output", seen.eval, own.eval, case.input_dtype, n, outcome.parity)
        check_dtype(outcome, "eval output", seen.eval.dtype, case.input_dtype)
    outcome.errors += [f"{case.label}: {name} error {outcome.parity.errors[name]:.3g}"
                       f" > allowed {outcome.parity.allowed[name]:.3g} (against its own {ctx.dtype} result)"
                       for name, ratio in outcome.parity.ratios.items() if not ratio <= 1]


def judge(ctx: RunContext, case: Case, x: torch.Tensor, seen: Seen, behaviour: Behaviour,
          outcome: Outcome, n: int) -> None:
    """Compare what one case observed with the float64 reference of `behaviour` (`n` values
    per channel)."""
    xr = x.double().cpu()
    expected, new_state = train_forward(behaviour, xr, seen.state, seen.weight, seen.bias)
    compare(ctx, "train output", seen.train, expected, case.input_dtype, n, outcome.parity)
    check_dtype(outcome, "train output", seen.train.dtype, case.input_dtype)
    if new_state is not None and seen.after is not None:
        pairs = (("running_mean", new_state.mean, seen.after.mean), ("running_var", new_state.var, seen.after.var))
        for role, ref, got in pairs:
            compare(ctx, role, got, ref, case.input_dtype, n, outcome.parity)
        outcome.dtypes += [f"{case.label}: {name} is {dtype}, expected {case.module_dtype}"
                           for name, dtype in seen.buffer_dtypes.items() if dtype != case.module_dtype]
        if seen.eval is not None:
            compare(ctx, "eval output", seen.eval, eval_forward(behaviour, xr, seen.after, seen.weight, seen.bias),
                    case.input_dtype, n, outcome.parity)  # from the module's own updated statistics
            check_dtype(outcome, "eval output", seen.eval.dtype, case.input_dtype)
    outcome.errors += [f"{case.label}: {name} error {outcome.parity.errors[name]:.3g}"
                       f" > allowed {outcome.parity.allowed[name]:.3g}"
                       for name, ratio in outcome.parity.ratios.items() if not ratio <= 1]


def torch_handles(ctx: RunContext, case: Case) -> bool:
    """Whether torch.nn.BatchNorm (torch.nn.functional.batch_norm, torch's semantics) passes
    the same case judged the same way against its own float64 result: the scale where torch
    breaks too is a limit of the dtype, not of the class."""
    x = case_input(ctx, case).cpu()
    c = x.shape[ctx.spec.channel_axis] if x.dim() > 1 else x.shape[0]
    xt = x.movedim(ctx.spec.channel_axis, 1) if ctx.spec.channel_axis == -1 else x
    state = RunningState(per_channel(FAR_MEANS, c).to(case.module_dtype).double(),
                         per_channel(FAR_VARS, c).to(case.module_dtype).double())
    weight = per_channel(GAMMA, c).to(case.module_dtype).double()
    bias = per_channel(BETA, c).to(case.module_dtype).double()
    try:
        seen = torch_seen(xt, state, weight, bias, case.module_dtype)
    except RuntimeError:  # the dtype is not implemented on this build: torch does not handle it
        return False
    outcome = Outcome(case)
    judge(ctx, case, xt, seen, TORCH, outcome, xt.numel() // c)
    return not outcome.errors


# torch.nn.BatchNorm's semantics: channels at dim 1, statistics over every other dim.
TORCH = Behaviour(channel_axis=1, reduction_axes={r: (0, *range(2, r)) for r in range(2, 6)})


def torch_seen(x: torch.Tensor, state: RunningState, weight: torch.Tensor, bias: torch.Tensor,
               dtype: torch.dtype) -> Seen:
    """What torch.nn.BatchNorm observes on `x` from the given state (module tensors in `dtype`)."""
    mean, var = state.mean.to(dtype), state.var.to(dtype)
    w, b = weight.to(dtype), bias.to(dtype)
    train = F.batch_norm(x, mean, var, w, b, training=True, momentum=0.1, eps=1e-5)
    after = RunningState(mean.double(), var.double())
    evaluated = F.batch_norm(x, mean, var, w, b, training=False, eps=1e-5)
    return Seen(weight, bias, state, train, after, {}, evaluated)


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
        buffers = {found.slots[r].name: found.get(module, r) for r in ("running_mean", "running_var")}
        seen.buffer_dtypes = {name: t.dtype for name, t in buffers.items() if type(t) in PLAIN_TENSORS}
        seen.eval = run(module, x, train=False, what=f"({case.label})")
    return seen


def same_sizes(before: RunningState, after: RunningState | None) -> bool:
    return after is not None and (after.mean.numel(), after.var.numel()) == (before.mean.numel(), before.var.numel())


def stored_state(found: Discovery, module: torch.nn.Module) -> RunningState | None:
    mean, var = snapshot(found, module, "running_mean"), snapshot(found, module, "running_var")
    return None if mean is None or var is None else RunningState(mean, var)


def check_dtype(outcome: Outcome, what: str, observed: torch.dtype, expected: torch.dtype) -> None:
    if observed != expected:
        outcome.dtypes.append(f"{outcome.case.label}: {what} is {observed}, expected {expected}")
