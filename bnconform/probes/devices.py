"""Probes of devices and conversions: does the module's state follow .to()/.cuda()/.half(),
does forward stay on the input's device and dtype, and do CUDA results match the reference?

The run context holds one device (the main run's); the devices a run covers are set by
RunSettings.devices (`ctx.devices`). These probes build their own modules on the device and
dtype they test, so the main run's context is never changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import torch

from bnconform.context import RunContext, describe_exception, materialized
from bnconform.discover import Discovery
from bnconform.errors import UserCodeError
from bnconform.probes.common import BETA, FAR_MEANS, FAR_VARS, GAMMA, per_channel, read
from bnconform.reference import RunningState, eval_forward, train_forward

NO_CUDA = "no CUDA device"
MEANS, STDS = [0.5, -1.0, 2.0], [1.0, 2.0, 0.5]
T = TypeVar("T")


def requested_devices(ctx: RunContext) -> tuple[str, ...]:
    """The devices this run covers (RunSettings.devices)."""
    return ctx.devices


def cuda_unavailable(ctx: RunContext) -> str:
    """Why the CUDA checks cannot run ("" when they can): a skip reason, never a pass."""
    if not torch.cuda.is_available():
        return NO_CUDA
    if "cuda" not in requested_devices(ctx):
        return "CUDA not requested (run with --device cuda or --device auto)"
    return ""


def state_tensors(module: torch.nn.Module) -> Iterator[tuple[str, str, torch.Tensor]]:
    """(dotted name, kind, tensor) of every tensor the module holds, plain attributes included."""
    yield from ((n, "parameter", t) for n, t in module.named_parameters())
    yield from ((n, "buffer", t) for n, t in module.named_buffers())
    for prefix, sub in module.named_modules():
        for name, value in vars(sub).items():
            if isinstance(value, torch.Tensor):  # parameters/buffers live in _parameters/_buffers
                yield (f"{prefix}.{name}" if prefix else name), "plain attribute", value


def stragglers(module: torch.nn.Module, *, device: str | None = None, dtype: torch.dtype | None = None) -> list[str]:
    """Tensors that did not follow a conversion to `device` / floating `dtype`."""
    wrong = []
    for name, kind, t in state_tensors(module):
        if device is not None and t.device.type != torch.device(device).type:
            wrong.append(f"{name} ({kind}) stays on {t.device}")
        elif dtype is not None and t.is_floating_point() and t.dtype != dtype:
            wrong.append(f"{name} ({kind}) stays {t.dtype}")
    return wrong


def isolated(ctx: RunContext, what: str, fn: Callable[[], T]) -> T:
    """Run one experiment (several calls into user code) as ONE guarded call: one worker thread
    and one timeout instead of one per call, which dominates the cost of small modules.
    Inside, `step` names the call that raised. Only data collection belongs in `fn`."""
    box: dict[str, UserCodeError] = {}

    def body() -> T | None:
        try:
            return fn()
        except UserCodeError as error:
            box["error"] = error
            return None

    value = ctx.guarded(what, body)
    if "error" in box:
        raise box["error"]
    return value  # type: ignore[return-value]


def step(what: str, fn: Callable[..., T], *args: object) -> T:
    """One call into user code inside `isolated`: its exception becomes a UserCodeError naming it."""
    try:
        return fn(*args)
    except UserCodeError:
        raise
    except Exception as error:  # noqa: BLE001 - user code may raise anything
        raise UserCodeError(what, describe_exception(error)) from None


def build_raw(ctx: RunContext, device: str, dtype: torch.dtype, *, convert: bool = True,
              rank: int | None = None, roles: dict[str, object] | None = None) -> torch.nn.Module:
    """A fresh module built with the spec's defaults (and `roles`), then moved unless `convert` is off.
    Call inside `isolated`."""
    roles = dict(roles or {})
    if ctx.builder.accepts("rank"):
        roles["rank"] = ctx.primary_rank if rank is None else rank
    call = f"constructing {ctx.builder.describe(ctx.channels, **roles)}"
    module = step(call, lambda: ctx.builder.build(ctx.channels, **roles))
    shape = ctx.layout_shape(ctx.primary_rank if rank is None else rank)
    module = step("initializing lazy parameters",
                  lambda: materialized(module, shape, infers_channels=not ctx.builder.accepts("num_features")))
    if convert:
        module = step(f"moving the module to {device}/{dtype}", lambda: module.to(device, dtype))
    return module


def prepared_raw(ctx: RunContext, device: str, dtype: torch.dtype,
                 rank: int | None = None) -> tuple[torch.nn.Module, Discovery]:
    """A module with gamma/beta and running statistics set to the probes' non-trivial values."""
    from bnconform.probes.basics import found_tensors

    module = build_raw(ctx, device, dtype, rank=rank)
    found = ctx.probe(found_tensors)  # the slots every probe uses, by name or by behaviour
    for role, values in (("weight", GAMMA), ("bias", BETA), ("running_mean", FAR_MEANS), ("running_var", FAR_VARS)):
        if found.has(role):
            found.set(module, role, per_channel(values, ctx.channels))
    return module, found


def sample(ctx: RunContext, device: str, dtype: torch.dtype, salt: int, batch: int = 4,
           means: list[float] = MEANS, stds: list[float] = STDS, rank: int | None = None) -> torch.Tensor:
    x = ctx.input_with_stats(ctx.primary_rank if rank is None else rank, means, stds, salt=salt, batch=batch)
    return x.to(device, dtype)


def run(module: torch.nn.Module, x: torch.Tensor, *, train: bool, what: str = "") -> torch.Tensor:
    """One forward in the given mode, inside `isolated`; a non-tensor result is user error."""
    label = f"{'train' if train else 'eval'}-mode forward{' ' + what if what else ''}"

    def call() -> object:
        module.train(train)
        return module(x)

    y = step(label, call)
    if not isinstance(y, torch.Tensor):
        raise UserCodeError(label, f"returned {type(y).__name__}, not a tensor", "type")
    return y


def snapshot(found: Discovery, module: torch.nn.Module, role: str) -> torch.Tensor | None:
    """A float64 CPU copy of a role's tensor (a copy: read() aliases a float64 CPU buffer)."""
    value = read(found, module, role)
    return None if value is None else value.clone()


def forward_problems(ctx: RunContext, module: torch.nn.Module, x: torch.Tensor, label: str) -> list[str]:
    """Train and eval forward on `x`: raising, or an output on another device/dtype, is a problem."""
    from bnconform.probes.basics import found_tensors

    problems = []
    found = ctx.probe(found_tensors)
    for train in (True, False):
        mode = "train" if train else "eval"
        try:
            y = run(module, x, train=train, what=label)
        except UserCodeError as error:
            if not raises_natively(ctx, train):  # else not the conversion's fault: forward-failed reports it
                problems.append(f"{mode}-mode forward {label} raises {error.detail}")
            continue
        if y.device != x.device or y.dtype != x.dtype:
            problems.append(f"{mode}-mode forward {label} returns {y.dtype} on {y.device} "
                            f"for a {x.dtype} input on {x.device}")
        for role in ("running_mean", "running_var"):
            t = found.get(module, role)
            if t is not None and (t.device != x.device or t.dtype != x.dtype):
                name = found.slots[role].name
                problems.append(f"after {'an' if mode == 'eval' else 'a'} {mode}-mode step {label}, {name} is"
                                f" {t.dtype} on {t.device}")
    return problems


def raises_natively(ctx: RunContext, train: bool) -> bool:
    """Whether this mode's forward raises with no conversion at all (the probes' own device and dtype)."""
    try:
        run(build_raw(ctx, ctx.settings.device, ctx.dtype), sample(ctx, ctx.settings.device, ctx.dtype, salt=300),
            train=train)
    except UserCodeError:
        return True
    return False


@dataclass(frozen=True)
class Transfer:
    problems: list[str]
    tried: list[str] = field(default_factory=list)


CONVERSIONS: tuple[tuple[str, torch.dtype, Callable[[torch.nn.Module], object]], ...] = (
    (".double()", torch.float64, lambda m: m.double()),
    (".half()", torch.float16, lambda m: m.half()),
    (".to(torch.bfloat16)", torch.bfloat16, lambda m: m.to(torch.bfloat16)),
)


def converted(ctx: RunContext, label: str, convert: Callable[[torch.nn.Module], object], x: torch.Tensor,
              *, device: str | None = None, dtype: torch.dtype | None = None) -> list[str]:
    """Build on the CPU in float32, convert, then list what stayed behind and how forward behaves."""
    module = build_raw(ctx, "cpu", torch.float32)
    step(f"{label} of the module", convert, module)
    wrong = [f"after {label}: {w}" for w in stragglers(module, device=device, dtype=dtype)]
    return wrong or forward_problems(ctx, module, x, f"after {label}")


def dtype_transfer(ctx: RunContext) -> Transfer:
    """.double()/.half()/.to(bfloat16) of a CPU module: every tensor converts, forward follows."""
    problems, tried = [], []
    for label, dtype, convert in CONVERSIONS:
        x = sample(ctx, "cpu", dtype, salt=300)
        tried.append(label)
        problems += attempt(ctx, label, lambda c=convert, d=dtype, x=x, lb=label: converted(ctx, lb, c, x, dtype=d))
    if ctx.builder.accepts("dtype"):
        label = "constructed with dtype=torch.float64"
        tried.append(label)
        problems += attempt(ctx, label, lambda: [f"{label}: {w}" for w in stragglers(
            build_raw(ctx, "cpu", torch.float64, convert=False, roles={"dtype": torch.float64}), dtype=torch.float64)])
    return Transfer(problems, tried)


def attempt(ctx: RunContext, label: str, fn: Callable[[], list[str]]) -> list[str]:
    try:
        return isolated(ctx, label, fn)
    except UserCodeError as error:
        return [f"{label}: {error}"]


def cuda_transfer(ctx: RunContext, device: str = "cuda") -> Transfer:
    """.to('cuda') / .cuda() of a CPU module, and construction with device='cuda'.
    (`device` is a parameter so the same probe can be exercised on the CPU in tests.)"""
    problems, tried = [], []
    x = sample(ctx, device, torch.float32, salt=301)
    moves = [(f".to({device!r})", lambda m: m.to(device))]
    if device == "cuda":
        moves.append((".cuda()", lambda m: m.cuda()))
    for label, move in moves:
        tried.append(label)
        problems += attempt(ctx, label, lambda mv=move, lb=label: converted(ctx, lb, mv, x, device=device))
    if ctx.builder.accepts("device"):
        label = f"constructed with device={device!r}"
        tried.append(label)
        problems += attempt(ctx, label, lambda: constructed_on(ctx, device, label, x))
    return Transfer(problems, tried)


def constructed_on(ctx: RunContext, device: str, label: str, x: torch.Tensor) -> list[str]:
    module = build_raw(ctx, device, torch.float32, convert=False, roles={"device": device})
    wrong = [f"{label}: {w}" for w in stragglers(module, device=device)]
    return wrong or forward_problems(ctx, module, x, f"of a module {label}")


@dataclass(frozen=True)
class Parity:
    """Largest error / allowed error per compared quantity, and the raw numbers."""

    ratios: dict[str, float]
    errors: dict[str, float]
    allowed: dict[str, float]


def allowed_error(ctx: RunContext, dtype: torch.dtype, reference: torch.Tensor, n: int) -> torch.Tensor:
    """The spec's tolerance for `dtype`, widened with the reduction length (specs/README.md);
    never tighter than the precision the class computes in (probes.precision)."""
    from bnconform.probes.precision import tolerance_dtype

    working = tolerance_dtype(ctx)
    if torch.finfo(working).eps > torch.finfo(dtype).eps:
        dtype = working
    tol = ctx.spec.tolerance(str(dtype))
    growth = torch.finfo(dtype).eps * (2 + n ** 0.5)
    magnitude = reference.abs()
    return tol.atol + tol.rtol * magnitude + growth * (1 + magnitude)


def compare(ctx: RunContext, name: str, observed: torch.Tensor | None, expected: torch.Tensor,
            dtype: torch.dtype, n: int, parity: Parity) -> None:
    """Record max |observed - expected| against the allowed error (inf when missing or not finite)."""
    expected = expected.detach().double().cpu()
    if expected.numel() == 0:  # nothing to measure against (a statistic the module emptied)
        matches = observed is not None and observed.numel() == 0
        parity.ratios[name] = parity.errors[name] = 0.0 if matches else float("inf")
        parity.allowed[name] = 0.0
        return
    allowed = allowed_error(ctx, dtype, expected, n).reshape(-1)
    if observed is None or observed.numel() != expected.numel():
        diff = torch.full_like(allowed, float("inf"))
    else:
        obs, exp = observed.detach().double().cpu().reshape(-1), expected.reshape(-1)
        # A value beyond the dtype's range is inf in any correct implementation too (a float16
        # running_var of 80000, say): matching that inf is not an error.
        representable = exp.to(dtype).double()
        overflowed = torch.isinf(representable) & (obs == representable)
        diff = torch.where(overflowed, torch.zeros_like(obs), (obs - exp).abs())
        diff = torch.where(torch.isfinite(diff), diff, torch.full_like(diff, float("inf")))
    worst = int((diff / allowed).argmax())  # reported where the error is largest *relative* to its allowance
    parity.ratios[name] = float(diff[worst] / allowed[worst])
    parity.errors[name] = float(diff[worst])
    parity.allowed[name] = float(allowed[worst])


def cuda_parity(ctx: RunContext, dtype: torch.dtype, device: str = "cuda") -> Parity:
    """A CPU-built module moved to CUDA: train output, input/weight/bias gradients, running
    statistics and the following eval output against the float64 CPU reference."""
    x = sample(ctx, device, dtype, salt=310).requires_grad_(True)
    upstream = torch.randn(x.shape, generator=ctx.generator(311), dtype=torch.float64)

    def collect() -> tuple[dict[str, torch.Tensor | None], set[str]]:
        module, found = prepared_raw(ctx, device, dtype)
        y = run(module, x, train=True, what=f"on {device}")
        step(f"train-mode backward on {device}", lambda: (y * upstream.to(y)).sum().backward())
        grads = {f"{r} gradient": getattr(found.get(module, r), "grad", None) for r in ("weight", "bias")
                 if found.has(r) and found.kind(r) == "parameter"}
        stats = {r: snapshot(found, module, r) for r in ("running_mean", "running_var")}
        y_eval = run(module, x.detach(), train=False, what=f"on {device}")
        observed = {"train output": y, "input gradient": x.grad, **grads, **stats, "eval output": y_eval}
        return observed, {r for r in ("weight", "bias") if found.has(r)}

    observed, affine = isolated(ctx, f"forward and backward on {device}", collect)
    return reference_parity(ctx, observed, affine, x, upstream, dtype)


def reference_parity(ctx: RunContext, observed: dict[str, torch.Tensor | None], affine: set[str],
                     x: torch.Tensor, upstream: torch.Tensor, dtype: torch.dtype) -> Parity:
    c = ctx.channels
    behaviour = ctx.behaviour()
    xr = x.detach().double().cpu().requires_grad_(True)
    w = per_channel(GAMMA, c).requires_grad_(True)
    b = per_channel(BETA, c).requires_grad_(True)
    weight, bias = (w if "weight" in affine else None), (b if "bias" in affine else None)
    state = RunningState(per_channel(FAR_MEANS, c), per_channel(FAR_VARS, c))
    y_ref, new_state = train_forward(behaviour, xr, state, weight, bias)
    (y_ref * upstream).sum().backward()
    n = x.numel() // c
    parity = Parity({}, {}, {})
    expected = {"train output": y_ref, "input gradient": xr.grad, "weight gradient": w.grad, "bias gradient": b.grad}
    if new_state is not None and observed["running_mean"] is not None:
        expected.update(running_mean=new_state.mean, running_var=new_state.var)
        expected["eval output"] = eval_forward(behaviour, xr.detach(), new_state, *detached(weight, bias))
    for name, ref in expected.items():
        if name in observed:
            compare(ctx, name, observed[name], ref, dtype, n, parity)
    return parity


def detached(*tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    return tuple(None if t is None else t.detach() for t in tensors)
