"""Builder: maps spec roles onto the target's own constructor parameters.

Users write `BatchNorm(nf, epsilon, mom)` or `make_bn(channels)`; the spec speaks of
num_features/eps/momentum. The Builder reads the signature once, maps each role to the
parameter that means it, and refuses up front (ConstructionError) when a required
parameter has no known meaning, so no check starts on a constructor it cannot call.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from bnconform.errors import ConstructionError, UserCodeError
from bnconform.init_args import parse_init  # noqa: F401 - its old home; the CLI imports it without torch
from bnconform.target import Target


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()
"""Sentinel for `build`: do not pass this argument; the class default applies."""

ALIASES: dict[str, tuple[str, ...]] = {
    "num_features": ("num_features", "features", "num_feats", "n_features", "nfeatures",
                     "n_neurons", "num_neurons", "nf", "channels", "num_channels",
                     "n_channels", "in_channels", "c", "dim", "size", "n", "feature_dim",
                     "hidden_size", "units", "in_features", "num_channel", "planes",
                     "n_feats", "width", "num_filters", "filters", "nc"),
    "eps": ("eps", "epsilon", "eps_", "variance_epsilon", "var_eps", "norm_eps"),
    "momentum": ("momentum", "mom", "decay", "decay_rate", "alpha", "ema_decay",
                 "bn_momentum", "moving_average_fraction", "ema_momentum", "rho"),
    "affine": ("affine", "elementwise_affine", "scale_and_shift", "learnable", "use_affine"),
    "track_running_stats": ("track_running_stats", "track_stats", "use_running_stats",
                            "track", "track_running_stat"),
    "rank": ("num_dims", "n_dims", "ndim", "ndims", "num_dim", "dims", "input_dims", "rank"),
    "device": ("device",),
    "dtype": ("dtype",),
}

# Used only when a role's parameter is required (no class default) and the caller passes
# DEFAULT: something must be passed, and PyTorch's defaults are the common vocabulary.
FALLBACKS: dict[str, object] = {
    "eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True,
    "device": None, "dtype": None,
}

_SPECIAL = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class Unsupported(Exception):
    """The caller asked for a role (e.g. momentum) that this constructor cannot take."""

    def __init__(self, role: str) -> None:
        super().__init__(f"the constructor has no parameter for {role!r}")
        self.role = role


class Builder:
    """Builds the target with spec roles translated to its own parameter names."""

    def __init__(self, target: Target, init: Mapping[str, object] | None = None) -> None:
        self.target = target
        self.init: dict[str, object] = dict(init or {})
        self._params = _parameters(target)
        self._var_kw = any(p.kind is p.VAR_KEYWORD for p in self._params.values())
        self._check_init_keys()
        self._roles = self._map_roles()
        self._check_required()

    @property
    def roles(self) -> dict[str, str]:
        """Role -> the class's parameter name, for roles the constructor accepts."""
        return dict(self._roles)

    def accepts(self, role: str) -> bool:
        return role in self._roles

    def param_for(self, role: str) -> str | None:
        return self._roles.get(role)

    def build(self, num_features: int, *, rank: int | None = None, eps: Any = DEFAULT,
              momentum: Any = DEFAULT, affine: Any = DEFAULT, track_running_stats: Any = DEFAULT,
              device: Any = DEFAULT, dtype: Any = DEFAULT) -> torch.nn.Module:
        """Call the constructor; its own exceptions propagate unchanged."""
        roles = dict(eps=eps, momentum=momentum, affine=affine,
                     track_running_stats=track_running_stats, device=device, dtype=dtype)
        args, kwargs = self._arguments(num_features, rank, roles)
        module = self.target.obj(*args, **kwargs)
        if not isinstance(module, torch.nn.Module):
            raise UserCodeError("constructor",
                                f"returned {type(module).__name__} instead of an nn.Module")
        return module

    def describe(self, num_features: int, *, rank: int | None = None, eps: Any = DEFAULT,
                 momentum: Any = DEFAULT, affine: Any = DEFAULT,
                 track_running_stats: Any = DEFAULT, device: Any = DEFAULT,
                 dtype: Any = DEFAULT) -> str:
        """The call `build` would make, as Python source, e.g. `BatchNorm(nf=3, mom=0.1)`."""
        roles = dict(eps=eps, momentum=momentum, affine=affine,
                     track_running_stats=track_running_stats, device=device, dtype=dtype)
        args, kwargs = self._arguments(num_features, rank, roles)
        parts = [_source(v) for v in args] + [f"{k}={_source(v)}" for k, v in kwargs.items()]
        return f"{self.target.attr_path}({', '.join(parts)})"

    def import_line(self) -> str:
        """One line of Python that binds the name `describe` uses, for standalone repros."""
        head = self.target.attr_path.split(".")[0]
        if self.target.file is None:
            return f"from {self.target.module_part} import {head}"
        path, folder = self.target.file, str(Path(self.target.file).parent)
        return (
            "import importlib.util, sys; "
            f"_spec = importlib.util.spec_from_file_location('bn_target', {path!r}); "
            "_mod = importlib.util.module_from_spec(_spec); sys.modules['bn_target'] = _mod; "
            f"sys.path.insert(0, {folder!r}); _spec.loader.exec_module(_mod); "
            f"{head} = _mod.{head}"
        )

    def pinned_ranks(self) -> tuple[int, ...] | None:
        """The input rank a rank argument pinned with --init selects; never guessed from the
        class name (a subclass or a partial of torch.nn.BatchNorm2d has no 2d in its name)."""
        pinned = self._pinned_rank()
        return None if pinned is None else (pinned,)

    # -- signature analysis ---------------------------------------------------------

    def _check_init_keys(self) -> None:
        named = [n for n, p in self._params.items() if p.kind not in _SPECIAL]
        unknown = [k for k in self.init if k not in named]
        if unknown and not self._var_kw:
            raise ConstructionError(
                f"cannot build {self.target.text}: --init {unknown[0]} is not a parameter of "
                f"the constructor; accepted: {', '.join(named) or '(none)'}"
            )

    def _map_roles(self) -> dict[str, str]:
        """Role -> parameter, first alias wins; parameters pinned by --init are left out
        so a check asking for that role is skipped instead of silently overridden."""
        free = {n.lower(): n for n, p in self._params.items()
                if p.kind not in _SPECIAL and n not in self.init}
        roles: dict[str, str] = {}
        for role, aliases in ALIASES.items():
            match = next((free.pop(a) for a in aliases if a in free), None)
            if match is not None:
                roles[role] = match
        if "num_features" not in roles and not self._aliased("num_features"):
            guess = self._guess_num_features(set(roles.values()))
            if guess:
                roles["num_features"] = guess
        return roles

    def _aliased(self, role: str) -> bool:
        lowered = {n.lower() for n in self._params}
        return any(a in lowered for a in ALIASES[role])

    def _unfilled(self, mapped: set[str]) -> list[str]:
        return [n for n, p in self._params.items()
                if p.kind not in _SPECIAL and p.default is p.empty
                and n not in mapped and n not in self.init]

    def _guess_num_features(self, mapped: set[str]) -> str | None:
        # One unknown required parameter is read as the channel count only when it looks
        # like one (an int, or a short unannotated name such as `k` or `ch`).
        remaining = self._unfilled(mapped)
        if len(remaining) != 1:
            return None
        param = self._params[remaining[0]]
        if param.annotation in (int, "int"):
            return param.name
        if param.annotation is param.empty and len(param.name) <= 3:
            return param.name
        return None

    def _check_required(self) -> None:
        missing = self._unfilled(set(self._roles.values()))
        if not missing:
            return
        name = missing[0]
        kind = _object_kind(self._params[name].annotation)
        if kind:  # --init gives Python literals only: no value of it can build this argument
            raise ConstructionError(
                f"cannot build {self.target.text}: required parameter {name!r} takes a {kind}, which"
                f" --init (Python literals) cannot give; check a factory instead, e.g."
                f" def make_bn(num_features): return {self.target.text.rpartition(':')[2]}(...)"
            )
        raise ConstructionError(
            f"cannot build {self.target.text}: required parameter {name!r} has no known "
            f"meaning; pass it with --init {name}=VALUE"
        )

    def pinned(self, role: str) -> Any:
        """The value --init gave the parameter that plays `role`, or DEFAULT when none did."""
        return next((self.init[k] for k in self.init if k.lower() in ALIASES[role]), DEFAULT)

    def _pinned_rank(self) -> int | None:
        value = next((self.init[a] for a in self.init if a.lower() in ALIASES["rank"]), None)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    # -- call assembly --------------------------------------------------------------

    def _arguments(self, num_features: int, rank: int | None,
                   roles: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        values: dict[str, Any] = dict(self.init)
        if self.accepts("num_features"):
            values[self._roles["num_features"]] = num_features
        if self.accepts("rank"):
            if rank is None:
                raise ValueError(f"{self.target.text} takes the input rank; pass rank=")
            values[self._roles["rank"]] = rank
        for role, value in roles.items():
            self._put(values, role, value)
        return self._split(values)

    def _put(self, values: dict[str, Any], role: str, value: Any) -> None:
        param = self._roles.get(role)
        if value is DEFAULT:
            if param is not None and self._params[param].default is inspect.Parameter.empty:
                values[param] = FALLBACKS[role]
            return
        if param is None:
            raise Unsupported(role)
        values[param] = value

    def _split(self, values: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Positional-only parameters go positionally, in signature order."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for name, param in self._params.items():
            if name in values and param.kind is param.POSITIONAL_ONLY:
                args.append(values[name])
            elif name in values:
                kwargs[name] = values[name]
        kwargs.update({k: v for k, v in values.items() if k not in self._params})
        return args, kwargs


def _parameters(target: Target) -> dict[str, inspect.Parameter]:
    """The constructor's parameters; a subclass that only forwards (*args, **kwargs)
    is read through to the first base whose __init__ names its parameters."""
    try:
        params = dict(inspect.signature(target.obj).parameters)
    except (TypeError, ValueError) as exc:
        raise ConstructionError(
            f"cannot build {target.text}: no readable signature ({exc})"
        ) from None
    if target.is_class and all(p.kind in _SPECIAL for p in params.values()):
        for base in target.obj.__mro__[1:]:
            if base is torch.nn.Module or "__init__" not in vars(base):
                continue
            inner = dict(list(inspect.signature(base.__init__).parameters.items())[1:])
            if inner and not all(p.kind in _SPECIAL for p in inner.values()):
                return inner
    return params


def _source(value: Any) -> str:
    if isinstance(value, torch.dtype):
        return str(value)  # `torch.float64` is valid source once torch is imported
    if isinstance(value, torch.device):
        return repr(str(value))
    return repr(value)


_LITERAL_TYPES = {"int", "float", "str", "bool", "bytes", "list", "tuple", "dict", "set", "None", "complex"}


def _object_kind(annotation: Any) -> str:
    """The name of the type a parameter is annotated with when no Python literal is one (a
    config dataclass, a module); "" for literal types, unions of them, or no annotation."""
    if annotation is inspect.Parameter.empty:
        return ""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if not text or not text.isidentifier() or text in _LITERAL_TYPES:
        return ""
    return text
