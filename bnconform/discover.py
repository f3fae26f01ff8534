"""Find a BatchNorm's weight, bias and running statistics, by name or by behaviour.

User classes call them gamma/beta/moving_mean, keep them as Parameters, buffers or plain
tensor attributes, or wrap an nn.BatchNorm2d. Checks address them by role; a Slot records
where each role lives so values can be read and written without changing its kind or shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch

ROLES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
RUNNING = ("running_mean", "running_var")

NAMES: dict[str, tuple[str, ...]] = {
    "weight": ("weight", "gamma", "scale", "g", "w"),
    "bias": ("bias", "beta", "offset", "shift", "b"),
    "running_mean": ("running_mean", "moving_mean", "exp_mean", "mean_ema", "ema_mean",
                     "avg_mean", "running_avg_mean", "pop_mean", "population_mean",
                     "moving_avg", "mean", "r_mean", "rm", "means", "running_means", "mu"),
    "running_var": ("running_var", "moving_var", "moving_variance", "exp_var", "var_ema",
                    "ema_var", "avg_var", "running_variance", "pop_var", "population_var",
                    "var", "r_var", "rv", "vars", "running_vars", "variance", "sigma2",
                    "running_std", "moving_std"),
    "num_batches_tracked": ("num_batches_tracked", "n_batches", "num_batches", "steps",
                            "step_count"),
}
STD_NAMES = frozenset({"running_std", "moving_std"})
"""running_var slots under these names hold a standard deviation; callers must square."""


@dataclass(frozen=True)
class Slot:
    """Where one role lives: dotted attribute path, its kind, and how it was found."""

    role: str
    name: str
    kind: str  # "parameter" | "buffer" | "attribute"
    found_by: str  # "name" | "behaviour"

    @property
    def holds_std(self) -> bool:
        """True when the slot stores a standard deviation rather than a variance."""
        return self.name.rpartition(".")[2].lower() in STD_NAMES


@dataclass(frozen=True)
class Discovery:
    """Role -> Slot. Tensors are looked up on every call: user code may rebind attributes."""

    slots: Mapping[str, Slot] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", MappingProxyType(dict(self.slots)))

    def has(self, role: str) -> bool:
        return role in self.slots

    def kind(self, role: str) -> str:
        return self.slots[role].kind

    def get(self, module: torch.nn.Module, role: str) -> torch.Tensor | None:
        """The role's current tensor, or None if the role or the attribute is gone."""
        slot = self.slots.get(role)
        if slot is None:
            return None
        value = _resolve(module, slot.name)
        return value if isinstance(value, torch.Tensor) else None

    def set(self, module: torch.nn.Module, role: str, values: torch.Tensor) -> None:
        """Copy `values` (shape (C,) or a scalar) into the slot, keeping shape/dtype/device/kind."""
        slot = self.slots[role]
        current = self.get(module, role)
        if current is None:
            raise KeyError(f"{slot.name} is no longer a tensor on {type(module).__name__}")
        if values.numel() != current.numel():
            if current.numel() == 1 and slot.role in RUNNING:
                return  # one statistic for all channels: left as it is; checks say it is not per channel
            raise ValueError(f"{slot.name} holds {current.numel()} values, got {values.numel()}")
        new = values.detach().reshape(current.shape).to(current.device, current.dtype)
        if slot.kind == "attribute":
            owner_path, _, attr = slot.name.rpartition(".")
            setattr(_resolve(module, owner_path) if owner_path else module, attr, new.clone())
            return
        with torch.no_grad():
            current.copy_(new)


def discover(module: torch.nn.Module, num_features: int) -> Discovery:
    """Find every role by name (see NAMES), matching the last path component."""
    candidates = list(_tensors(module))
    slots: dict[str, Slot] = {}
    taken: set[str] = set()
    for role in ROLES:
        best = _best_by_name(role, candidates, num_features, taken)
        if best is not None:
            slots[role] = Slot(role, best[0], best[1], "name")
            taken.add(best[0])
    return Discovery(slots)


def discover_by_behaviour(module: torch.nn.Module, num_features: int,
                          train_step: Callable[[], None], batch_mean: torch.Tensor,
                          batch_var: torch.Tensor) -> Discovery:
    """Name-based discovery, plus running stats found by watching one training step.

    Every buffer/attribute with C values is snapshot, `train_step` runs once, and a tensor
    that moved toward `batch_mean` (or `batch_var`) becomes that running statistic. The
    module is left changed: callers pass a fresh one. Pick batch stats far from the
    initial running stats and from each other, or the two cannot be told apart.
    """
    found = discover(module, num_features)
    missing = [r for r in RUNNING if not found.has(r)]
    if not missing:
        return found
    used = {s.name for s in found.slots.values()}
    before = {name: t.detach().clone() for name, kind, t in _tensors(module)
              if kind != "parameter" and t.numel() == num_features and name not in used}
    kinds = {name: kind for name, kind, _ in _tensors(module)}
    train_step()
    targets = {"running_mean": batch_mean, "running_var": batch_var}
    slots = dict(found.slots)
    for role in missing:
        name = _best_mover(module, before, targets[role])
        if name is not None:
            slots[role] = Slot(role, name, kinds[name], "behaviour")
            before.pop(name)
    return Discovery(slots)


def _tensors(module: torch.nn.Module) -> Iterator[tuple[str, str, torch.Tensor]]:
    """(dotted name, kind, tensor) for parameters, buffers and plain tensor attributes."""
    yield from ((n, "parameter", t) for n, t in module.named_parameters())
    yield from ((n, "buffer", t) for n, t in module.named_buffers())
    for prefix, sub in module.named_modules():
        for attr, value in vars(sub).items():
            # Parameters and buffers live in _parameters/_buffers, so vars() holds only plain
            # attributes here.
            if isinstance(value, torch.Tensor):
                yield (f"{prefix}.{attr}" if prefix else attr), "attribute", value


def _best_by_name(role: str, candidates: list[tuple[str, str, torch.Tensor]],
                  num_features: int, taken: set[str]) -> tuple[str, str] | None:
    names = NAMES[role]
    scored = []
    for name, kind, tensor in candidates:
        last = name.rpartition(".")[2].lower()
        if name in taken or last not in names or not _fits(role, tensor, num_features):
            continue
        # Kind first (weights are parameters, statistics are not), then the more specific
        # alias (running_mean before mean), then the shallower path.
        kind_rank = _kind_rank(role, kind)
        scored.append(((kind_rank, names.index(last), name.count("."), name), (name, kind)))
    return min(scored)[1] if scored else None


def _kind_rank(role: str, kind: str) -> int:
    if role in ("weight", "bias"):
        return 0 if kind == "parameter" else 1
    return 1 if kind == "parameter" else 0


def _fits(role: str, tensor: torch.Tensor, num_features: int) -> bool:
    if role == "num_batches_tracked":
        return tensor.numel() == 1
    if role in RUNNING and tensor.numel() == 1 and tensor.is_floating_point():
        return True  # one statistic for every channel: found, and reported as misshapen
    return tensor.numel() == num_features


def _best_mover(module: torch.nn.Module, before: Mapping[str, torch.Tensor],
                target: torch.Tensor) -> str | None:
    """The snapshot that moved toward `target` most; partial moves beat exact jumps,
    because a cache of the last batch jumps all the way while a running average does not."""
    scored = []
    for name, old in before.items():
        new = _resolve(module, name)
        if not isinstance(new, torch.Tensor) or new.numel() != old.numel():
            continue
        score = _progress(old, new.detach(), target)
        if score > 1e-6:
            scored.append(((score < 1 - 1e-6, score), name))
    return max(scored)[1] if scored else None


def _progress(old: torch.Tensor, new: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of the distance to `target` covered by the move from `old` to `new`."""
    goal = target.detach().reshape(-1).double().cpu()
    before = (old.reshape(-1).double().cpu() - goal).norm()
    after = (new.reshape(-1).double().cpu() - goal).norm()
    if not torch.isfinite(after) or before == 0:
        return 0.0
    return float((before - after) / before)


def _resolve(module: torch.nn.Module, dotted: str) -> object:
    obj: object = module
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def misregistered(found: Discovery, roles: tuple[str, ...], wanted: str) -> str:
    """"moving_mean is a plain attribute, moving_var is a plain attribute" for found roles whose
    kind is not `wanted`; "" when every one is."""
    wrong = [found.slots[r] for r in roles if found.has(r) and found.kind(r) != wanted]
    return ", ".join(f"{s.name} is a {'plain attribute' if s.kind == 'attribute' else s.kind}" for s in wrong)
