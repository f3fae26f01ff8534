"""Reading and validating spec TOML files (private to bnconform.spec).

Every value is checked at the boundary; an error names the file, line, table and key, the
bad value and what would be accepted. `[spec] extends` is followed, cycles refused.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from bnconform.errors import SpecError
from bnconform.spec import BUILTIN_PACKAGE, DTYPES, Spec, Tolerance

MAX_RANK = 5

# --------------------------------------------------------------------------- value parsers


class _Bad(Exception):
    """A value failed validation; the loader adds file, line, table and key."""


_Parser = Callable[[Any], Any]
_TYPE_NAMES = {bool: "boolean", int: "integer", float: "float", str: "string",
               list: "array", dict: "table"}


def _got(value: Any) -> str:
    return f"got {_TYPE_NAMES.get(type(value), type(value).__name__)} {value!r}"


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f"expected a string, {_got(value)}")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"expected a boolean (true/false), {_got(value)}")
    return value


def _integer(value: Any) -> int:
    # bool is an int subclass in Python; TOML true is never a valid integer here.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"expected an integer, {_got(value)}")
    return value


def _enum(*choices: str) -> _Parser:
    def parse(value: Any) -> str:
        if _string(value) not in choices:
            raise _Bad(f"{value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    return parse


def _number(lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> _Parser:
    def parse(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Bad(f"expected a number, {_got(value)}")
        if not math.isfinite(value):  # NaN passes every comparison below; inf is no tolerance or eps
            raise _Bad(f"{value!r} is not a finite number")
        bounds = []
        if lo is not None:
            bounds.append(f"> {lo}" if lo_open else f">= {lo}")
            if value < lo or (lo_open and value == lo):
                raise _Bad(f"{value!r} is out of range; must be {' and '.join(bounds)}")
        if hi is not None and value > hi:
            raise _Bad(f"{value!r} is out of range; must be {' and '.join(bounds + [f'<= {hi}'])}")
        return float(value)
    return parse


def _channel_axis(value: Any) -> int:
    if _integer(value) not in (1, -1):
        raise _Bad(f"{value!r} is not one of 1 (channels first), -1 (channels last)")
    return value


def _axis_list(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise _Bad(f"{what}: expected an array of integers, {_got(value)}")
    axes = tuple(_integer(v) for v in value)
    if len(set(axes)) != len(axes):
        raise _Bad(f"{what}: {list(axes)} has duplicates")
    return tuple(sorted(axes))


def _ranks(value: Any) -> tuple[int, ...]:
    ranks = _axis_list(value, "ranks")
    if not ranks or min(ranks) < 2:
        raise _Bad(f"{value!r}: need at least one rank, each >= 2 (batch and channel axes)")
    if max(ranks) > MAX_RANK:  # the probes build inputs of rank 2 to 5 (BatchNorm1d/2d/3d)
        raise _Bad(f"rank {max(ranks)} is not supported; bnconform checks ranks 2 to {MAX_RANK}")
    return ranks


def _reduction_axes(value: Any) -> dict[int, tuple[int, ...]]:
    if not isinstance(value, dict):
        raise _Bad(f"expected a table like {{ 4 = [0, 2, 3] }}, {_got(value)}")
    out = {}
    for key, axes in value.items():
        if not key.isdigit():
            raise _Bad(f"key {key!r} is not a rank (a positive integer)")
        out[int(key)] = _axis_list(axes, f"rank {key}")
        if any(a < 0 for a in out[int(key)]):
            raise _Bad(f"rank {key}: axes must be non-negative, got {list(axes)}")
    return out


def _interop(value: Any) -> str | None:
    # TOML has no null: "none" lets a spec that extends pytorch switch interop off.
    return None if _enum("torch.nn.BatchNorm", "none")(value) == "none" else value


# --------------------------------------------------------------------------- schema

class _Key(NamedTuple):
    attr: str  # Spec field name ("" for keys consumed while loading)
    parse: _Parser
    required: bool


def _k(attr: str, parse: _Parser, required: bool = True) -> _Key:
    return _Key(attr, parse, required)


_BIAS = _enum("biased", "unbiased")
_UNIT = _number(0.0, 1.0)
_SCHEMA: dict[str, dict[str, _Key]] = {
    "spec": {"name": _k("name", _string), "description": _k("description", _string),
             "source": _k("source", _string), "extends": _k("", _string, False)},
    "layout": {"channel_axis": _k("channel_axis", _channel_axis),
               "ranks": _k("ranks", _ranks),
               "reduction_axes": _k("reduction_axes", _reduction_axes)},
    "normalization": {
        "variance": _k("norm_variance", _BIAS),
        "eps": _k("eps", _number(0.0, lo_open=True)),
        "eps_placement": _k("eps_placement", _enum("inside-sqrt", "outside-sqrt")),
        "variance_algorithm": _k("variance_algorithm", _enum("two-pass", "fast"))},
    "running_stats": {
        "track": _k("track_running_stats", _boolean),
        "momentum_convention": _k("momentum_convention", _enum("new-weight", "old-weight")),
        "momentum_default": _k("momentum_default", _UNIT),
        "momentum_none": _k("momentum_none", _enum("cumulative", "unsupported")),
        "variance": _k("running_var_estimator", _BIAS),
        "mean_init": _k("running_mean_init", _number()),
        "var_init": _k("running_var_init", _number(0.0)),
        "num_batches_tracked": _k("num_batches_tracked", _boolean),
        "update_under_no_grad": _k("update_under_no_grad", _boolean)},
    "eval": {"uses": _k("eval_uses", _enum("running", "batch")),
             "updates_running_stats": _k("eval_updates_running_stats", _boolean)},
    "training": {"batch_of_one": _k("batch_of_one", _enum("error", "allowed")),
                 "uses": _k("train_uses", _enum("batch", "running"), False)},
    "affine": {"weight_init": _k("weight_init", _number()),
               "bias_init": _k("bias_init", _number()),
               "trainable": _k("affine_trainable", _boolean, False)},
    "interop": {"state_dict": _k("state_dict_interop", _interop, False)},
} | {f"tolerance.{d}": {"rtol": _k(f"{d}.rtol", _number(0.0)),
                        "atol": _k(f"{d}.atol", _number(0.0))} for d in DTYPES}


# --------------------------------------------------------------------------- locating lines


class _Source(NamedTuple):
    path: str
    text: str


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")


def _headers(text: str) -> dict[str, int]:
    """Table name -> 1-based line of its `[header]` (quotes and spaces around dots removed)."""
    found: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if match := _HEADER.match(line):
            name = ".".join(p.strip().strip("\"'") for p in match.group(1).split("."))
            found.setdefault(name, number)
    return found


def _find_line(text: str, table: str, key: str | None) -> int:
    """Best line for `[table] key`; tomllib gives no positions, so scan the text."""
    headers, lines = _headers(text), text.splitlines()
    parts = table.split(".") + ([key] if key else [])
    fallback: int | None = None  # the innermost header that exists
    for cut in range(len(parts), 0, -1):
        start = headers.get(".".join(parts[:cut]))
        if start is None:
            continue
        fallback = start if fallback is None else fallback
        rest = parts[cut:]
        if not rest:
            return start
        pattern = re.compile(r"^\s*[\"']?" + re.escape(rest[0]) + r"[\"']?\s*[.=]")
        for number in range(start + 1, len(lines) + 1):
            if _HEADER.match(lines[number - 1]):
                break
            if pattern.match(lines[number - 1]):
                return number
    return fallback or 1


def _fail(src: _Source, table: str, key: str | None, problem: str) -> SpecError:
    where = f"[{table}] {key}" if key else f"[{table}]"
    return SpecError(f"{src.path}:{_find_line(src.text, table, key)}: {where}: {problem}")


# --------------------------------------------------------------------------- loading

_Entries = dict[tuple[str, str], tuple[Any, _Source]]  # (table, key) -> (raw value, set where)


def _parse_toml(src: _Source) -> dict[str, Any]:
    try:
        return tomllib.loads(src.text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's TOMLDecodeError has no lineno attribute: read it from the message.
        match = re.search(r"line (\d+)", str(exc))
        line = match.group(1) if match else max(1, len(src.text.splitlines()))
        raise SpecError(f"{src.path}:{line}: TOML syntax error: {exc}") from None


def _tables(doc: dict[str, Any], src: _Source) -> dict[str, dict[str, Any]]:
    """Top-level tables by dotted name; `[tolerance.float32]` becomes "tolerance.float32"."""
    tables: dict[str, dict[str, Any]] = {}
    for name, body in doc.items():
        subs = body.items() if name == "tolerance" and isinstance(body, dict) else None
        for table, value in ((f"{name}.{k}", v) for k, v in subs) if subs else [(name, body)]:
            if table not in _SCHEMA:
                raise _fail(src, table, None, "unknown table; valid tables are "
                            + ", ".join(f"[{t}]" for t in _SCHEMA))
            if not isinstance(value, dict):
                raise _fail(src, table, None, f"expected a table, {_got(value)}")
            tables[table] = value
    return tables


def _flatten(doc: dict[str, Any], src: _Source) -> _Entries:
    entries: _Entries = {}
    for table, body in _tables(doc, src).items():
        for key, value in body.items():
            if key not in _SCHEMA[table]:
                raise _fail(src, table, key, "unknown key; valid keys are "
                            + ", ".join(_SCHEMA[table]))
            entries[(table, key)] = (value, src)
    return entries


def _read(path: Path | Traversable, shown: str) -> _Source:
    try:
        return _Source(shown, path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{shown}: cannot read spec file: {exc}") from None


def _builtin_dir() -> Traversable:
    """The installed bnconform.builtin_specs package, or specs/ of a source checkout.

    The fallback matters when a source checkout shadows an installed (non-editable) copy,
    e.g. `python -m pytest` in the repository under tox: its bnconform/ has no builtin_specs.
    """
    try:
        return resources.files(BUILTIN_PACKAGE)
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "specs"


def builtin_names() -> list[str]:
    """Names of the spec files shipped in specs/ (package bnconform.builtin_specs)."""
    return sorted(p.name.removesuffix(".toml") for p in _builtin_dir().iterdir()
                  if p.name.endswith(".toml"))


def locate(name_or_path: str, base: Path | None) -> _Source:
    """A built-in name, or a path (relative to `base`, the extending file's folder)."""
    path = Path(name_or_path) if base is None else base / name_or_path
    if name_or_path.endswith(".toml") or os.sep in name_or_path or "/" in name_or_path:
        return _read(path, str(path))
    if name_or_path not in builtin_names():
        raise SpecError(f"unknown spec {name_or_path!r}; built-in specs are "
                        f"{', '.join(builtin_names())}, or give a path to a .toml file")
    resource = _builtin_dir().joinpath(f"{name_or_path}.toml")
    return _read(resource, str(resource))


def _entries(src: _Source, chain: tuple[str, ...]) -> _Entries:
    """The file's entries on top of those of the spec it extends (name is never inherited)."""
    own = _flatten(_parse_toml(src), src)
    if ("spec", "extends") not in own:
        return own
    parent_name = _string_at(own, "spec", "extends")
    try:
        parent = locate(parent_name, Path(src.path).parent)
    except SpecError as exc:
        raise _fail(src, "spec", "extends", str(exc)) from None
    if os.path.realpath(parent.path) in map(os.path.realpath, chain):
        raise _fail(src, "spec", "extends", "cycle: " + " -> ".join(chain + (parent.path,)))
    inherited = _entries(parent, chain + (parent.path,))
    inherited.pop(("spec", "name"), None)
    del own[("spec", "extends")]
    return inherited | own


def _string_at(entries: _Entries, table: str, key: str) -> str:
    value, src = entries[(table, key)]
    try:
        return _string(value)
    except _Bad as exc:
        raise _fail(src, table, key, str(exc)) from None


def _values(entries: _Entries, leaf: _Source) -> dict[str, Any]:
    """Parse every schema key into its Spec attribute name; missing keys fail in `leaf`."""
    values: dict[str, Any] = {}
    for table, keys in _SCHEMA.items():
        for key, (attr, parse, required) in keys.items():
            if (table, key) in entries:
                raw, src = entries[(table, key)]
                try:
                    values[attr] = parse(raw)
                except _Bad as exc:
                    raise _fail(src, table, key, str(exc)) from None
            elif required:
                raise _fail(leaf, table, key, "required key is missing")
            else:
                values[attr] = None
    values.pop("")  # [spec] extends: consumed while loading
    return values


def _blame(entries: _Entries, leaf: _Source, table: str, *keys: str) -> tuple[str, _Source]:
    """Of keys that conflict, the one set in the file being loaded (else the first)."""
    for key in keys:
        if entries[(table, key)][1] is leaf:
            return key, leaf
    return keys[0], entries[(table, keys[0])][1]


def _check_layout(values: dict[str, Any], entries: _Entries, leaf: _Source) -> None:
    """Every rank has reduction axes, inside the rank and excluding the channel axis."""
    table, ranks, axis = values["reduction_axes"], values["ranks"], values["channel_axis"]
    for rank in sorted(set(ranks) ^ set(table)):
        key, src = _blame(entries, leaf, "layout", "reduction_axes", "ranks")
        problem = "has no reduction_axes entry" if rank in ranks else "has reduction_axes"
        raise _fail(src, "layout", key, f"rank {rank} {problem} but ranks = {list(ranks)}; "
                    "ranks and the keys of reduction_axes must match")
    for rank, axes in table.items():
        if 0 not in axes:  # a batch norm reduces over the batch; without it nothing is "batch" statistics
            raise _fail(entries[("layout", "reduction_axes")][1], "layout", "reduction_axes",
                        f"rank {rank}: reduction axes {list(axes)} do not include the batch axis 0")
        if axes and max(axes) >= rank:
            raise _fail(entries[("layout", "reduction_axes")][1], "layout", "reduction_axes",
                        f"rank {rank}: axis {max(axes)} is outside a rank-{rank} input")
        if axis % rank in axes:
            key, src = _blame(entries, leaf, "layout", "reduction_axes", "channel_axis")
            raise _fail(src, "layout", key, f"rank {rank}: reduction axis {axis % rank} is "
                        f"the channel axis (channel_axis = {axis}); statistics are per channel")


def _check_eval(values: dict[str, Any], entries: _Entries, leaf: _Source) -> None:
    # Without running statistics there is nothing for eval to use but the batch.
    if not values["track_running_stats"] and values["eval_uses"] == "running":
        key, src = _blame(entries, leaf, "eval", "uses")
        if src is not leaf and entries[("running_stats", "track")][1] is leaf:
            raise _fail(leaf, "running_stats", "track",
                        "false needs [eval] uses = 'batch' (no running statistics to use)")
        raise _fail(src, "eval", key, "'running' needs [running_stats] track = true")


def spec_from_source(src: _Source) -> Spec:
    entries = _entries(src, (src.path,))
    values = _values(entries, src)
    _check_layout(values, entries, src)
    _check_eval(values, entries, src)
    # Optional keys left out keep the Spec's defaults (batch statistics, trainable affine).
    for optional in ("train_uses", "affine_trainable"):
        if values[optional] is None:
            values.pop(optional)
    values["tolerances"] = MappingProxyType(
        {d: Tolerance(values.pop(f"{d}.rtol"), values.pop(f"{d}.atol")) for d in DTYPES})
    values["reduction_axes"] = MappingProxyType(dict(sorted(values["reduction_axes"].items())))
    return Spec(path=src.path, **values)
