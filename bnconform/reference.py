"""The spec's reference BatchNorm, in float64 and differentiable.

A `Behaviour` is the shared vocabulary of specs and fingerprints: the same dataclass says
what a spec requires and what a hypothesis about an implementation predicts, so probes can
compare an implementation against the spec and against alternative explanations alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch

from bnconform.spec import Spec


@dataclass(frozen=True)
class Behaviour:
    """How one BatchNorm variant computes its output and updates its statistics."""

    channel_axis: int
    reduction_axes: Mapping[int, tuple[int, ...]]
    norm_variance: str = "biased"
    eps: float = 1e-5
    eps_placement: str = "inside-sqrt"
    new_weight: float | None = 0.1  # None: cumulative average (PyTorch momentum=None)
    running_var_estimator: str = "unbiased"
    train_uses: str = "batch"  # "batch" | "running"
    running_init: tuple[float, float] = (0.0, 1.0)  # a fresh module's statistics (frozen: used in training)

    @classmethod
    def from_spec(cls, spec: Spec, momentum: float | None = None) -> Behaviour:
        """The spec's behaviour; `momentum` is a constructor value in the spec's convention."""
        m = spec.momentum_default if momentum is None else momentum
        return cls(
            channel_axis=spec.channel_axis,
            reduction_axes=dict(spec.reduction_axes),
            norm_variance=spec.norm_variance,
            eps=spec.eps,
            eps_placement=spec.eps_placement,
            new_weight=spec.new_weight(m),
            running_var_estimator=spec.running_var_estimator,
            train_uses=spec.train_uses,
            running_init=(spec.running_mean_init, spec.running_var_init),
        )

    def but(self, **changes: object) -> Behaviour:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass
class RunningState:
    mean: torch.Tensor
    var: torch.Tensor
    steps: int = 0

    def clone(self) -> RunningState:
        return RunningState(self.mean.clone(), self.var.clone(), self.steps)


def channel_view(values: torch.Tensor, rank: int, channel_axis: int) -> torch.Tensor:
    """Reshape per-channel values (C,) so they broadcast against an input of `rank`."""
    shape = [1] * rank
    shape[channel_axis % rank] = values.numel()
    return values.reshape(shape)


def batch_statistics(x: torch.Tensor, axes: tuple[int, ...], estimator: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance over `axes`, kept broadcastable (two-pass, so numerically sound)."""
    mean = x.mean(dim=axes, keepdim=True)
    count = count_over(x, axes)
    sq = ((x - mean) ** 2).sum(dim=axes, keepdim=True)
    divisor = count - 1 if estimator == "unbiased" else count
    return mean, sq / max(divisor, 1)


def count_over(x: torch.Tensor, axes: tuple[int, ...]) -> int:
    count = 1
    for axis in axes:
        count *= x.shape[axis]
    return count


def normalize(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, eps: float, placement: str) -> torch.Tensor:
    if placement == "outside-sqrt":
        return (x - mean) / (var.sqrt() + eps)
    return (x - mean) / (var + eps).sqrt()


def affine(x_hat: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, axis: int) -> torch.Tensor:
    out = x_hat
    if weight is not None:
        out = out * channel_view(weight, x_hat.dim(), axis)
    if bias is not None:
        out = out + channel_view(bias, x_hat.dim(), axis)
    return out


def squeeze_channels(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1)


def train_forward(
    behaviour: Behaviour,
    x: torch.Tensor,
    state: RunningState | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, RunningState | None]:
    """Training-mode output and the updated running state (None when not tracked)."""
    axes = behaviour.reduction_axes[x.dim()]
    mean, var = batch_statistics(x, axes, behaviour.norm_variance)
    if behaviour.train_uses == "running":
        # Frozen statistics: the given state, or those of a freshly built module.
        fixed = state or RunningState(torch.full((mean.numel(),), behaviour.running_init[0], dtype=x.dtype),
                                      torch.full((mean.numel(),), behaviour.running_init[1], dtype=x.dtype))
        mean = channel_view(fixed.mean, x.dim(), behaviour.channel_axis)
        var = channel_view(fixed.var, x.dim(), behaviour.channel_axis)
    x_hat = normalize(x, mean, var, behaviour.eps, behaviour.eps_placement)
    y = affine(x_hat, weight, bias, behaviour.channel_axis)
    new_state = None if state is None else update_running(behaviour, x.detach(), state)
    return y, new_state


def update_running(behaviour: Behaviour, x: torch.Tensor, state: RunningState) -> RunningState:
    axes = behaviour.reduction_axes[x.dim()]
    mean, var = batch_statistics(x, axes, behaviour.running_var_estimator)
    steps = state.steps + 1
    w = 1.0 / steps if behaviour.new_weight is None else behaviour.new_weight
    return RunningState(
        (1 - w) * state.mean + w * squeeze_channels(mean),
        (1 - w) * state.var + w * squeeze_channels(var),
        steps,
    )


def eval_forward(
    behaviour: Behaviour,
    x: torch.Tensor,
    state: RunningState,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    mean = channel_view(state.mean, x.dim(), behaviour.channel_axis)
    var = channel_view(state.var, x.dim(), behaviour.channel_axis)
    x_hat = normalize(x, mean, var, behaviour.eps, behaviour.eps_placement)
    return affine(x_hat, weight, bias, behaviour.channel_axis)
