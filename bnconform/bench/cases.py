"""The modules and the timed passes: forward (train), forward+backward and eval forward.

Both implementations get the same input, the same initial state, the same device and dtype;
on CUDA every timed call ends with torch.cuda.synchronize(), so the time covers the kernels
and not just their launch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from bnconform.construct import Builder
from bnconform.errors import UsageError
from bnconform.target import Target

from .bandwidth import bytes_moved
from .shapes import Shape, shape_text, torch_class

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
ROLES = ("target", "torch")
# Each case is timed twice, A B B A: a burst of load from elsewhere that spoils one repeat
# leaves the other, and the report keeps the lower of the two medians (compare.medians).
ORDER = (("target", "a"), ("torch", "a"), ("torch", "b"), ("target", "b"))


@dataclass(frozen=True)
class Setting:
    """What every case of one run shares."""

    device: str
    dtype: torch.dtype
    seed: int = 0


def build_target(builder: Builder, shape: Shape, setting: Setting) -> torch.nn.Module:
    """The target for `shape`'s channel count; a constructor that fails is a one-line UsageError."""
    try:
        module = builder.build(shape[1], rank=len(shape))
    except UsageError:
        raise
    except Exception as error:  # noqa: BLE001 - the user's constructor: report, do not crash
        raise UsageError(f"constructing the target for {shape_text(shape)} raised "
                         f"{type(error).__name__}: {error}") from None
    return module.to(device=setting.device, dtype=setting.dtype)


def build_torch(shape: Shape, setting: Setting) -> torch.nn.Module:
    return torch_class(len(shape))(shape[1]).to(device=setting.device, dtype=setting.dtype)


def make_input(shape: Shape, setting: Setting, seed_offset: int = 0) -> torch.Tensor:
    """A reproducible non-standard input (mean 0.5, std 2), so normalization has work to do."""
    generator = torch.Generator().manual_seed(setting.seed + seed_offset)
    x = torch.randn(shape, generator=generator) * 2.0 + 0.5
    return x.to(device=setting.device, dtype=setting.dtype)


def synced(fn: Callable[[], object], device: str) -> Callable[[], object]:
    """`fn` followed by a CUDA synchronize on CUDA (asynchronous kernels), else `fn` itself."""
    if device != "cuda":
        return fn

    def run() -> object:
        result = fn()
        torch.cuda.synchronize()
        return result

    return run


def pass_callable(module: torch.nn.Module, pass_name: str, x: torch.Tensor, dy: torch.Tensor,
                  cut_history: bool) -> Callable[[], object]:
    """A zero-argument call of one pass; x requires grad, as a layer's input does in training.

    cut_history: the module's buffers keep autograd history (a bug the memory columns show);
    detach them after each call so thousands of timed calls cannot exhaust memory.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    buffers = [b for b in module.buffers() if b.is_floating_point()]

    def forward() -> object:
        module.train()
        return module(x)

    def forward_backward() -> object:
        module.train()
        return torch.autograd.grad(module(x), [x, *params], dy)  # no .grad accumulation traffic

    def evaluate() -> object:
        module.eval()
        with torch.no_grad():
            return module(x)

    fn = {"forward": forward, "forward+backward": forward_backward, "eval": evaluate}[pass_name]
    if not cut_history:
        return fn

    def guarded() -> object:
        result = fn()
        for buffer in buffers:
            if buffer.grad_fn is not None:
                buffer.detach_()
        return result

    return guarded


def keeps_history(module: torch.nn.Module, x: torch.Tensor) -> bool:
    """After one training forward, does any floating buffer carry a grad_fn?"""
    module.train()
    module(x)
    return any(b.grad_fn is not None for b in module.buffers())


def run_user(fn: Callable[[], object], what: str) -> object:
    """Run the target once; its exception becomes a one-line UsageError (e.g. a rank it rejects)."""
    try:
        return fn()
    except Exception as error:  # noqa: BLE001 - the user's forward: report, do not crash
        detail = str(error).splitlines()[0] if str(error) else ""
        raise UsageError(f"the target raised on {what}: {type(error).__name__}: {detail} "
                         "(try --shapes with a rank it supports)") from None


@dataclass
class Case:
    """One benchmark: an implementation, a pass, a shape, and its timed callable."""

    role: str  # "target" or "torch"
    impl: str
    pass_name: str
    shape: Shape
    call: Callable[[], object]
    info: dict[str, object]  # pytest-benchmark's extra_info: how a saved run is matched later

    @property
    def test_id(self) -> str:
        return f"{self.pass_name}-{shape_text(self.shape)}-{self.role}-{self.info['repeat']}"


def build_cases(target: Target, builder: Builder, shapes: list[Shape], passes: tuple[str, ...],
                setting: Setting) -> list[Case]:
    """Every (shape, pass, role, repeat), in ORDER, so load bursts hit target and torch alike."""
    cases = []
    for index, shape in enumerate(shapes):
        x = make_input(shape, setting, index).requires_grad_(True)
        dy = make_input(shape, setting, index + 1000)
        modules = {"target": build_target(builder, shape, setting), "torch": build_torch(shape, setting)}
        names = {"target": target.text, "torch": f"torch.nn:{torch_class(len(shape)).__name__}"}
        cut = run_user(lambda m=modules["target"], x=x: keeps_history(m, x), f"input {shape_text(shape)}")
        for pass_name in passes:
            calls = {role: pass_callable(modules[role], pass_name, x, dy, cut and role == "target") for role in ROLES}
            run_user(calls["target"], f"{pass_name} of {shape_text(shape)}")
            for role, repeat in ORDER:
                info = {"role": role, "impl": names[role], "pass": pass_name, "shape": list(shape),
                        "dtype": str(setting.dtype).removeprefix("torch."), "device": setting.device,
                        "bytes": bytes_moved(pass_name, shape, x.element_size()), "repeat": repeat}
                cases.append(Case(role, names[role], pass_name, shape, synced(calls[role], setting.device), info))
    return cases
