"""Global torch state fencing: user code cannot change the numbers bnconform's reference sees.

torch keeps process-wide settings that change results or autograd (grad mode, default
dtype and device, flush-denormal, deterministic algorithms, anomaly mode, the CPU RNG,
thread count). A target that flips one at import (`torch.set_grad_enabled(False)` in a
notebook-style module is common) would otherwise make bnconform's own reference, or a
correct class, compute in a state nobody chose. The worker snapshots the state before the
import, reports what the import changed, and every guarded call runs between two restores.
A forward that writes into its input is caught here too (`InputWatch`), and the input is
put back so no later probe reads the modified values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import torch

# 2**-1074 * 3: a float64 denormal that flush-to-zero turns into 0. torch.set_flush_denormal
# has no getter, so the setting is read by multiplying a denormal by one.
_DENORMAL = 1.5e-323


@dataclass(frozen=True)
class State:
    grad_enabled: bool
    default_dtype: torch.dtype
    default_device: str
    flush_denormal: bool
    deterministic: bool
    deterministic_warn_only: bool
    anomaly: bool
    anomaly_check_nan: bool
    num_threads: int
    rng: torch.Tensor = field(compare=False, repr=False)

    def described(self) -> dict[str, str]:
        """Setting name -> value, as a user would write it (for the global-state-changed finding)."""
        return {
            "grad mode (torch.is_grad_enabled())": str(self.grad_enabled),
            "default dtype (torch.get_default_dtype())": str(self.default_dtype),
            "default device (torch.get_default_device())": self.default_device,
            "flush denormal (torch.set_flush_denormal)": str(self.flush_denormal),
            "deterministic algorithms (torch.use_deterministic_algorithms)": str(self.deterministic),
            "deterministic warn_only": str(self.deterministic_warn_only),
            "anomaly mode (torch.autograd.set_detect_anomaly)": str(self.anomaly),
            "anomaly check_nan": str(self.anomaly_check_nan),
            "intra-op threads (torch.set_num_threads)": str(self.num_threads),
        }


def flush_denormal_enabled() -> bool:
    probe = torch.tensor([_DENORMAL], dtype=torch.float64)
    return bool((probe * 1.0).item() == 0.0)


def snapshot() -> State:
    return State(
        grad_enabled=torch.is_grad_enabled(),
        default_dtype=torch.get_default_dtype(),
        default_device=str(torch.get_default_device()),
        flush_denormal=flush_denormal_enabled(),
        deterministic=torch.are_deterministic_algorithms_enabled(),
        deterministic_warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
        anomaly=torch.is_anomaly_enabled(),
        anomaly_check_nan=torch.is_anomaly_check_nan_enabled(),
        num_threads=torch.get_num_threads(),
        rng=torch.get_rng_state(),
    )


def changes(before: State, after: State) -> dict[str, tuple[str, str]]:
    """Setting -> (before, after) for every setting that differs, the RNG state included."""
    old, new = before.described(), after.described()
    changed = {name: (old[name], new[name]) for name in old if old[name] != new[name]}
    if not torch.equal(before.rng, after.rng):
        changed["CPU random number generator (torch.manual_seed / draws)"] = ("seeded state", "changed")
    return changed


def restore(state: State, *, rng: bool = True) -> None:
    """Put every setting back to `state`; each setter runs only when its value differs (cheap)."""
    if torch.is_grad_enabled() != state.grad_enabled:
        torch.set_grad_enabled(state.grad_enabled)
    if torch.get_default_dtype() != state.default_dtype:
        torch.set_default_dtype(state.default_dtype)
    if str(torch.get_default_device()) != state.default_device:
        torch.set_default_device(None if state.default_device == "cpu" else state.default_device)
    if flush_denormal_enabled() != state.flush_denormal:
        torch.set_flush_denormal(state.flush_denormal)
    deterministic = (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
    if deterministic != (state.deterministic, state.deterministic_warn_only):
        torch.use_deterministic_algorithms(state.deterministic, warn_only=state.deterministic_warn_only)
    if (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()) != (state.anomaly,
                                                                                state.anomaly_check_nan):
        torch.autograd.set_detect_anomaly(state.anomaly, state.anomaly_check_nan)
    if torch.get_num_threads() != state.num_threads:
        torch.set_num_threads(state.num_threads)
    if rng:
        torch.set_rng_state(state.rng)


@contextmanager
def fenced(state: State) -> Iterator[None]:
    """User code starts in `state` and whatever it changes is undone before bnconform runs again.

    The RNG is saved and put back rather than reset, so a class that draws random numbers
    sees a stream, and bnconform's own draws (explicit generators) never depend on it.
    """
    restore(state, rng=False)
    rng = torch.get_rng_state()
    try:
        yield
    finally:
        restore(replace(state, rng=rng))


@dataclass
class InputWatch:
    """Compares the inputs of each outermost module call with their clones as the call returns.

    Compared in the forward hook, not when the guarded call ends: a probe may legitimately
    change its own tensors between two module calls (finite differences), the class may not
    during one. A modified input is recorded and put back at once, and an output that shares
    its memory is copied first, so the caller sees the values it passed and the class's output.
    """

    saved: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    depth: int = 0

    def pre_hook(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if self.depth == 0:  # only the caller's inputs: submodules may own their intermediates
            self.saved = [(a, a.detach().clone()) for a in args
                          if type(a) is torch.Tensor and a.device.type != "meta"]
        self.depth += 1

    def post_hook(self, module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        self.depth = max(0, self.depth - 1)
        if self.depth:
            return None
        modified = [(t, saved) for t, saved in self.saved if not same_values(t, saved)]
        self.saved = []
        if not modified:
            return None
        self.writes.append(describe_change(modified))
        return put_back(modified, output)


def describe_change(modified: list[tuple[torch.Tensor, torch.Tensor]]) -> str:
    tensor, saved = modified[0]
    if tensor.shape != saved.shape or tensor.dtype != saved.dtype:
        return f"the input became {tensor.dtype} {list(tensor.shape)} (was {saved.dtype} {list(saved.shape)})"
    with torch.no_grad():
        changed = int((tensor != saved).sum())
    return f"{changed} of {saved.numel()} input values changed (input shape {list(saved.shape)})"


def same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    with torch.no_grad():
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        return bool(((a == b) | (a.isnan() & b.isnan())).all())


@contextmanager
def watching_inputs() -> Iterator[InputWatch]:
    """Watch every top-level module call in the block (global hooks, removed afterwards)."""
    watch = InputWatch()
    pre = torch.nn.modules.module.register_module_forward_pre_hook(watch.pre_hook)
    post = torch.nn.modules.module.register_module_forward_hook(watch.post_hook, always_call=True)
    try:
        yield watch
    finally:
        pre.remove()
        post.remove()


def put_back(modified: list[tuple[torch.Tensor, torch.Tensor]], value: Any) -> Any:
    """Restore modified inputs in place; an output that shares their memory is copied first."""
    if isinstance(value, torch.Tensor) and any(shares_memory(value, t) for t, _ in modified):
        value = value.clone()
    with torch.no_grad():
        for tensor, saved in modified:
            if tensor.shape == saved.shape and tensor.dtype == saved.dtype:
                tensor.copy_(saved)
            else:  # resized or retyped in place: give the tensor object its original storage back
                tensor.set_(saved)
    return value


def shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    try:
        return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # meta or exotic tensors have no storage to share
        return False
