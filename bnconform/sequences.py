"""A hypothesis state machine that drives the implementation and the spec's reference side by side.

Rules: forward steps (with and without grad) in the current mode, train()/eval() switches,
reset_running_stats() where the class has it, and a state_dict save + load into a fresh
instance. After every rule, outputs, running statistics and the step counter are compared
with the float64 reference (bnconform.reference). Every rule also writes the Python line
that does the same thing, so the shrunk failing sequence is a runnable snippet. The walks
through it (a fixed tour, then random sequences) are in bnconform.sequence_search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from bnconform.context import RunContext
from bnconform.discover import Discovery, discover
from bnconform.errors import UserCodeError
from bnconform.probes.basics import found_tensors, merge
from bnconform.probes.common import BETA, GAMMA, per_channel, read
from bnconform.probes.devices import allowed_error, build_raw, isolated, step
from bnconform.reference import Behaviour, RunningState, eval_forward, train_forward, update_running

EXAMPLES = {"default": 5, "thorough": 100}
STEPS = {"default": 8, "thorough": 30}
DEFAULT = "default"  # momentum not passed: the class default

# The kinds of calls a sequence is made of (Divergence.calls).
TRAIN_FORWARD = "train forward"
TRAIN_FORWARD_NO_GRAD = "train forward under no_grad"
EVAL_FORWARD = "eval forward with grad enabled"
EVAL_FORWARD_NO_GRAD = "eval forward under no_grad"
TO_TRAIN = "train()"
TO_EVAL = "eval()"
RESET = "reset_running_stats()"
RELOAD = "state_dict reload"
# What differed (Divergence.what): a compared value, or a call that raised.
COMPARED = ("output", "running_mean", "running_var", "num_batches_tracked")
RAISED = "raised"


@dataclass
class Divergence:
    """The shortest failing sequence found (hypothesis replays the shrunk one last), and what
    was observed: which value differed (`what`: one of COMPARED, or RAISED when a call raised or
    returned no tensor; "" when the sequence did not finish), in which call (`during`: one of the
    kinds above, or "construction"), the kinds of calls the whole sequence made, in order of first
    use (`calls`), whether the tensor read had the wrong number of values or none (`size_differs`)."""

    lines: list[str] = field(default_factory=list)
    message: str = ""
    roles: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    what: str = ""
    during: str = ""
    calls: list[str] = field(default_factory=list)
    size_differs: bool = False


def momenta(ctx: RunContext) -> list[object]:
    """Constructor momenta to try: the default, an explicit value and None (cumulative average)
    when the spec defines it and the class accepts it (the momentum-none check reports a class
    that does not: here it is simply not used, so no divergence is claimed for it)."""
    if not ctx.builder.accepts("momentum"):
        return [DEFAULT]
    choices: list[object] = [DEFAULT, 0.3]
    if ctx.spec.momentum_none == "cumulative" and ctx.probe(accepts_none_momentum):
        choices.append(None)
    return choices


def accepts_none_momentum(ctx: RunContext) -> bool:
    """Whether the class builds with momentum=None and trains one step with it (a class that
    stores None and then computes `1 - self.momentum` fails only in forward)."""
    batch = batches(ctx)[0]

    def attempt() -> None:
        module = build_raw(ctx, str(ctx.device), ctx.dtype, roles={"momentum": None})
        x = ctx.input_with_stats(ctx.primary_rank, [0.5, -1.0], [1.0, 2.0], salt=360, batch=batch)
        step("a training step with momentum=None", lambda: module.train()(x))

    try:
        isolated(ctx, "constructing with momentum=None", attempt)
    except UserCodeError:
        return False
    return True


def batches(ctx: RunContext) -> tuple[int, ...]:
    """Batch sizes the sequences use: 2-4, or the nearest the class accepts in training
    (a ghost-BN class that needs an even N gets only even ones; its limit is batch-size-constraint's)."""
    domain = ctx.known_domain()
    rejected = set(getattr(domain, "batch_rejected", {}) or {})
    accepted = [n for n in (2, 3, 4, 6, 8, 9) if n not in rejected]
    if not rejected:
        return (2, 3, 4)
    return tuple(accepted[:3]) or (int(getattr(domain, "batch", 4)),)


def fit_batch(batch: int, allowed: tuple[int, ...]) -> int:
    """The allowed batch size nearest to `batch` (the tour is written for 2-4)."""
    return min(allowed, key=lambda n: (abs(n - batch), n))


def behaviour_for(ctx: RunContext, momentum: object) -> Behaviour:
    if momentum is None:
        return Behaviour.from_spec(ctx.spec).but(new_weight=None)
    if momentum == DEFAULT:
        return ctx.behaviour()
    return Behaviour.from_spec(ctx.spec, float(momentum))  # type: ignore[arg-type]


def fmt(t: torch.Tensor | None) -> str:
    return "None" if t is None else str([round(v, 6) for v in t.reshape(-1).tolist()[:6]])


def machine(ctx: RunContext, divergence: Divergence) -> type[RuleBasedStateMachine]:
    """The state machine class for this context; a failing step records itself in `divergence`."""
    spec = ctx.spec
    rank, dtype = ctx.primary_rank, ctx.dtype
    allowed = batches(ctx)
    known = ctx.probe(found_tensors)

    class Sequence(RuleBasedStateMachine):
        direct = False  # True while a whole replay runs inside one guarded call (see replay)

        def __init__(self) -> None:
            super().__init__()
            self.lines: list[str] = []
            self.module: torch.nn.Module | None = None
            self.training = True
            self.calls = 0  # rules run so far: the length of the sequence
            self.kinds: list[str] = []  # the kind of each of those calls
            self.during = "construction"

        def called(self, kind: str) -> None:
            self.calls += 1
            self.kinds.append(kind)
            self.during = kind

        # -- construction --------------------------------------------------------------

        def fresh(self) -> tuple[torch.nn.Module, Discovery]:
            module = build_raw(ctx, str(ctx.device), dtype, rank=rank, roles=self.roles)
            # Statistics found by behaviour (any name) are the same attributes of every instance.
            return module, merge(step("inspecting the module", discover, module, ctx.channels), known)

        @initialize(momentum=st.sampled_from(momenta(ctx)))
        def build(self, momentum: object) -> None:
            self.roles = {} if momentum == DEFAULT else {"momentum": momentum}
            self.behaviour = behaviour_for(ctx, momentum)
            self.module, self.found = self.attempt("construction", lambda: self.block("construction", self.fresh))
            for role, values in (("weight", GAMMA), ("bias", BETA)):
                if self.found.has(role):
                    self.found.set(self.module, role, per_channel(values, ctx.channels))
                    self.lines.append(f"with torch.no_grad(): bn.{self.found.slots[role].name}"
                                      f".copy_(torch.tensor({per_channel(values, ctx.channels).tolist()}))")
            self.weight, self.bias = (copied(read(self.found, self.module, r)) for r in ("weight", "bias"))
            # The reference starts from the implementation's own initial statistics and counter:
            # wrong initial values are running-stats-init's finding; this check follows dynamics.
            self.initial = own_state(ctx, self.found, self.module)
            self.state = self.initial.clone()
            self.lines.append("bn.train()")

        # -- rules -----------------------------------------------------------------------

        @rule(salt=st.integers(0, 999), batch=st.sampled_from(allowed), scale=st.sampled_from([0.5, 1.0, 3.0]),
              shift=st.sampled_from([-2.0, 0.0, 1.5]), grad=st.booleans())
        def forward(self, salt: int, batch: int, scale: float, shift: float, grad: bool) -> None:
            if self.training:
                self.called(TRAIN_FORWARD if grad else TRAIN_FORWARD_NO_GRAD)
            else:
                self.called(EVAL_FORWARD if grad else EVAL_FORWARD_NO_GRAD)
            shape = ctx.shape(rank, fit_batch(batch, allowed))
            base = torch.randn(shape, generator=torch.Generator().manual_seed(salt), dtype=torch.float64)
            x = ctx.to_layout(base * scale + shift)
            self.lines.append(f"x = torch.randn({shape}, generator=torch.Generator().manual_seed({salt}),"
                              f" dtype=torch.float64) * {scale} + {shift}")
            if spec.channel_axis == -1:
                self.lines.append("x = x.movedim(1, -1).contiguous()")
            self.lines.append("y = bn(x)" if grad else "with torch.no_grad():\n    y = bn(x)")
            module = self.module
            y = self.attempt("forward", lambda: self.call("forward", module, x.to(ctx.device, dtype), grad=grad))
            if not isinstance(y, torch.Tensor):
                self.fail(f"forward returned {type(y).__name__}, not a tensor", "", RAISED)
            expected = self.reference(x, grad)
            self.compare("output", y, expected)
            self.compare_state()

        @rule()
        def train_mode(self) -> None:
            self.called(TO_TRAIN)
            self.training = True
            self.lines.append("bn.train()")
            self.module.train()

        @rule()
        def eval_mode(self) -> None:
            self.called(TO_EVAL)
            self.training = False
            self.lines.append("bn.eval()")
            self.module.eval()

        @precondition(lambda self: callable(getattr(self.module, "reset_running_stats", None)))
        @rule()
        def reset_running_stats(self) -> None:
            self.called(RESET)
            self.lines.append("bn.reset_running_stats()")
            reset = self.module.reset_running_stats
            self.attempt("reset_running_stats()", lambda: self.call("reset_running_stats()", reset))
            self.state = RunningState(self.initial.mean.clone(), self.initial.var.clone())  # counter to 0
            self.compare_state()

        @rule()
        def reload(self) -> None:
            """state_dict save, then load into a fresh instance that carries on."""
            self.called(RELOAD)
            call = ctx.builder.describe(ctx.channels, **self.roles, **rank_role(ctx))
            self.lines += [f"fresh = {call}.double()", "fresh.load_state_dict(bn.state_dict())",
                           f"bn = fresh.train({self.training})"]
            what = "state_dict reload"
            self.module, self.found = self.attempt(what, lambda: self.block(what, self.reloaded))
            self.compare_state()

        def reloaded(self) -> tuple[torch.nn.Module, Discovery]:
            saved = step("state_dict()", self.module.state_dict)
            module, found = self.fresh()
            step("load_state_dict()", module.load_state_dict, saved)
            step(f"train({self.training})", module.train, self.training)
            return module, found

        # -- reference and comparison -------------------------------------------------------

        def reference(self, x: torch.Tensor, grad: bool) -> torch.Tensor:
            b = self.behaviour
            if self.training:
                y, new = train_forward(b, x, self.state, self.weight, self.bias)
                if grad or spec.update_under_no_grad:
                    self.state = new
                return y
            if spec.eval_uses == "batch":
                y = train_forward(b, x, None, self.weight, self.bias)[0]
            else:
                y = eval_forward(b, x, self.state, self.weight, self.bias)
            if spec.eval_updates_running_stats:
                self.state = update_running(b, x, self.state)
            return y

        def compare_state(self) -> None:
            for role, ref in (("running_mean", self.state.mean), ("running_var", self.state.var)):
                self.compare(role, read(self.found, self.module, role), ref)
            counter = read(self.found, self.module, "num_batches_tracked")
            if spec.num_batches_tracked and counter is not None:
                self.compare("num_batches_tracked", counter, torch.tensor([float(self.state.steps)]))

        def compare(self, what: str, observed: torch.Tensor | None, expected: torch.Tensor) -> None:
            n = ctx.values_per_channel(rank)
            allowed = allowed_error(ctx, dtype, expected, n)
            sized = observed is not None and observed.numel() == expected.numel()
            if sized:
                diff = (observed.detach().double().cpu().reshape(expected.shape) - expected).abs()
                if bool((diff <= allowed).all()):
                    return
            shown = "y" if what == "output" else f"bn.{self.found.slots[what].name}" if self.found.has(what) else ""
            actual = "no readable tensor" if observed is None else fmt(observed)
            self.fail(f"{what} differs: spec reference {fmt(expected)}, implementation {actual}",
                      f"print({shown})  # spec reference: {fmt(expected)}" if shown else "", what,
                      size_differs=not sized)

        def call(self, what: str, fn: Callable[..., Any], *args: Any, grad: bool = True) -> Any:
            """One call into user code: guarded on its own, or directly inside a guarded replay."""
            if not self.direct:
                return ctx.guarded(what, fn, *args, grad=grad)
            with torch.set_grad_enabled(grad):
                return step(what, fn, *args)

        def block(self, what: str, fn: Callable[[], Any]) -> Any:
            """Several calls into user code (`step`s) as one guarded call, unless already inside one."""
            return fn() if self.direct else isolated(ctx, what, fn)

        def attempt(self, what: str, fn: Callable[[], Any]) -> Any:
            try:
                return fn()
            except UserCodeError as error:
                self.fail(f"{what} raised: {error.detail}", "", RAISED)

        def fail(self, message: str, show: str, what: str, size_differs: bool = False) -> None:
            divergence.lines = self.lines + ([show] if show else [])
            divergence.message, divergence.roles, divergence.steps = message, dict(self.roles), self.calls
            divergence.what, divergence.during, divergence.size_differs = what, self.during, size_differs
            divergence.calls = list(dict.fromkeys(self.kinds))
            raise AssertionError(message)

    return Sequence


def own_state(ctx: RunContext, found: Discovery, module: torch.nn.Module) -> RunningState:
    """The module's running statistics and counter as built (float64 copies); the spec's initial
    values where the class has no such tensor or one of another size."""
    spec, c = ctx.spec, ctx.channels
    state = RunningState(torch.full((c,), spec.running_mean_init, dtype=torch.float64),
                         torch.full((c,), spec.running_var_init, dtype=torch.float64))
    mean, var = (read(found, module, role) for role in ("running_mean", "running_var"))
    if mean is not None and mean.numel() == c:
        state.mean = mean.detach().double().cpu().reshape(c).clone()
    if var is not None and var.numel() == c:
        state.var = var.detach().double().cpu().reshape(c).clone()
    counter = read(found, module, "num_batches_tracked")
    if counter is not None and counter.numel() == 1 and bool(torch.isfinite(counter).all()):
        state.steps = int(counter.detach().cpu().reshape(()).item())
    return state


def rank_role(ctx: RunContext) -> dict[str, int]:
    return {"rank": ctx.primary_rank} if ctx.builder.accepts("rank") else {}


def copied(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clone()
