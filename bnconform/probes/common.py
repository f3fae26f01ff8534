"""Small measurement helpers shared by probes."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bnconform.context import RunContext, per_channel
from bnconform.discover import Discovery
from bnconform.reference import RunningState

FAR_MEANS = [10.0, -10.0, 20.0]  # running statistics far from every probe batch
FAR_VARS = [9.0, 16.0, 25.0]
GAMMA = [1.5, -0.5, 2.0]
BETA = [0.3, -1.2, 0.7]


def relative_error(observed: torch.Tensor, expected: torch.Tensor) -> float:
    """max |observed - expected| / max |expected|; inf when shapes differ or values are not finite."""
    if observed.shape != expected.shape:
        return float("inf")
    observed = observed.detach().double().cpu()
    expected = expected.detach().double().cpu()
    if not torch.isfinite(observed).all():
        return float("inf")
    scale = expected.abs().max().clamp_min(1e-12)
    return float((observed - expected).abs().max() / scale)


def classify(observed: torch.Tensor, candidates: dict[str, torch.Tensor], tol: float) -> str:
    """Name of the candidate the observation matches within `tol`, else "other"."""
    errors = {name: relative_error(observed, value) for name, value in candidates.items()}
    best = min(errors, key=errors.__getitem__)
    return best if errors[best] <= tol else "other"


@dataclass
class Prepared:
    module: torch.nn.Module
    discovery: Discovery


def prepare(
    ctx: RunContext,
    rank: int | None = None,
    *,
    gamma: list[float] | None = None,
    beta: list[float] | None = None,
    running: tuple[list[float], list[float]] | None = None,
    **roles: object,
) -> Prepared:
    """A fresh module with chosen affine parameters and running statistics."""
    from bnconform.probes.basics import found_tensors

    module = ctx.build(rank, **roles)
    # The same slots everywhere: statistics found by behaviour once are found in every probe.
    found = ctx.probe(found_tensors)
    c = ctx.channels
    for role, values in (("weight", gamma), ("bias", beta)):
        if values is not None and found.has(role):
            found.set(module, role, per_channel(values, c))
    if running is not None and per_channel_running(found, module, c):
        found.set(module, "running_mean", per_channel(running[0], c))
        found.set(module, "running_var", per_channel(running[1], c))
    return Prepared(module, found)


def per_channel_running(found: Discovery, module: torch.nn.Module, channels: int) -> bool:
    """Both running statistics exist and hold one value per channel (else nothing is set)."""
    tensors = [found.get(module, role) for role in ("running_mean", "running_var")]
    return all(t is not None and t.numel() == channels for t in tensors)


PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)


def readable(value: object) -> torch.Tensor | None:
    """`value`'s numbers as a flat float64 CPU tensor (it may alias a float64 CPU buffer), or None
    when it has none to read: not a tensor, a tensor subclass (each of its methods is user code,
    which may raise or hang outside any guard), or a tensor on the meta device (no data).
    Callers still check the size: an empty or misshapen statistic is readable but not per channel."""
    if type(value) not in PLAIN_TENSORS or value.is_meta:
        return None
    return value.detach().double().cpu().reshape(-1)


def read(found: Discovery, module: torch.nn.Module, role: str) -> torch.Tensor | None:
    """The role's current values (see readable), or None when the role holds no readable tensor."""
    return readable(found.get(module, role))


def held(value: torch.Tensor | None) -> str:
    """A statistic's shape in words, never calling into a tensor subclass: "(3,)", "(3,) on meta"."""
    if value is None:
        return "no tensor"
    if type(value) not in PLAIN_TENSORS:
        return f"a {type(value).__name__} (tensor subclass)"
    return f"{tuple(value.shape)}{' on meta' if value.is_meta else ''}"


def running_state(found: Discovery, module: torch.nn.Module) -> RunningState | None:
    mean, var = read(found, module, "running_mean"), read(found, module, "running_var")
    if mean is None or var is None:
        return None
    return RunningState(mean, var)


def forward(
    ctx: RunContext,
    module: torch.nn.Module,
    x: torch.Tensor,
    *,
    train: bool = True,
    grad: bool = True,
    what: str = "forward",
) -> torch.Tensor:
    """Run the module once in the given mode; a non-tensor or NaN result is user error."""

    def call() -> object:
        module.train(train)
        return module(x)

    label = f"{'train' if train else 'eval'}-mode {what}"
    from bnconform.probes.inputs import validated_output

    y = validated_output(label, ctx.guarded(label, call, grad=grad), x)
    return y.detach()  # probes measure values; gradients have their own probe


def affine_values(found: Discovery, module: torch.nn.Module, channels: int) -> tuple[torch.Tensor | None, ...]:
    """Weight and bias as the reference applies them: one value per channel or one for all;
    None for a role that is absent, unreadable or of any other size (nothing to apply)."""
    values = (read(found, module, role) for role in ("weight", "bias"))
    return tuple(t if t is not None and t.numel() in (1, channels) else None for t in values)
