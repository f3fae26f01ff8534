"""Spec files: the BatchNorm convention an implementation is checked against.

A spec is a TOML file (layout documented key by key in specs/README.md). This module
loads one, follows `[spec] extends`, validates every value at the boundary and returns
a frozen `Spec`. It imports no torch, so the CLI's `specs` command and the renderers
can use it cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bnconform.errors import SpecError

BUILTIN_PACKAGE = "bnconform.builtin_specs"
DEFAULT_SPEC = "pytorch"
DTYPES = ("float64", "float32", "float16", "bfloat16")
_DTYPE_ALIASES = {"double": "float64", "float": "float32", "half": "float16"}


@dataclass(frozen=True)
class Tolerance:
    """Comparison tolerance for one dtype: |observed - expected| <= atol + rtol * |expected|."""

    rtol: float
    atol: float


RANK_GROUPS = ((2, 3), (4,), (5,))  # torch's BatchNorm1d / 2d / 3d


@dataclass(frozen=True)
class Spec:
    """One framework's BatchNorm convention, as loaded from a spec file."""

    name: str
    description: str
    source: str
    path: str
    channel_axis: int
    ranks: tuple[int, ...]
    reduction_axes: Mapping[int, tuple[int, ...]] = field(hash=False)
    norm_variance: str
    eps: float
    eps_placement: str
    variance_algorithm: str
    track_running_stats: bool
    momentum_convention: str
    momentum_default: float
    momentum_none: str
    running_var_estimator: str
    running_mean_init: float
    running_var_init: float
    num_batches_tracked: bool
    update_under_no_grad: bool
    eval_uses: str
    eval_updates_running_stats: bool
    batch_of_one: str
    weight_init: float
    bias_init: float
    state_dict_interop: str | None
    tolerances: Mapping[str, Tolerance] = field(hash=False)
    # Frozen layers (FrozenBatchNorm): "running" = training normalizes with the fixed running
    # statistics; affine_trainable False = gamma/beta are fixed buffers. Optional keys.
    train_uses: str = "batch"
    affine_trainable: bool = True

    def new_weight(self, momentum: float) -> float:
        """The weight of the NEW batch's statistic that constructor value `momentum` means."""
        _require_unit(momentum, "momentum")
        # Both conventions are involutions of each other: w = m or w = 1 - m.
        return momentum if self.momentum_convention == "new-weight" else 1.0 - momentum

    def momentum_for_new_weight(self, w: float) -> float:
        """The constructor momentum that gives the new batch weight `w` (inverse of new_weight)."""
        _require_unit(w, "new-batch weight")
        return w if self.momentum_convention == "new-weight" else 1.0 - w

    def tolerance(self, dtype_name: str) -> Tolerance:
        """The tolerance for a dtype given as "float32", "torch.float32" or "half"."""
        short = str(dtype_name).removeprefix("torch.")
        short = _DTYPE_ALIASES.get(short, short)
        if short not in self.tolerances:
            raise SpecError(f"{self.path}: spec '{self.name}' has no tolerance for dtype "
                            f"{dtype_name!r}; known dtypes: {', '.join(self.tolerances)}")
        return self.tolerances[short]

    @property
    def rank_groups(self) -> tuple[tuple[int, ...], ...]:
        """Ranks that go together: a layer made for one kind of data handles all of its ranks
        ((N, C) and (N, C, L) for BatchNorm1d), but need not handle another kind's."""
        groups = (tuple(r for r in group if r in self.ranks) for group in RANK_GROUPS)
        return tuple(g for g in groups if g)

    def axes_for_rank(self, rank: int) -> tuple[int, ...]:
        """The non-negative axes the statistics reduce over for an input of this rank."""
        if rank not in self.reduction_axes:
            raise ValueError(f"spec '{self.name}' defines no layout for rank {rank}; "
                             f"it defines ranks {list(self.ranks)}")
        return self.reduction_axes[rank]


def _require_unit(value: float, what: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be in [0, 1], got {value!r}")


def load_spec(name_or_path: str) -> Spec:
    """Load a built-in spec by name ("pytorch") or a spec file by path ("my.toml")."""
    from bnconform.spec_file import locate, spec_from_source

    return spec_from_source(locate(name_or_path, None))


def builtin_spec_names() -> list[str]:
    """Names of the shipped specs (the .toml files of the top-level specs/ folder)."""
    from bnconform.spec_file import builtin_names

    return builtin_names()


def load_builtin_specs() -> list[Spec]:
    """Every shipped spec, in name order."""
    return [load_spec(name) for name in builtin_spec_names()]
