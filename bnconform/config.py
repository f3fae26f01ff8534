"""Project configuration: `[tool.bnconform]` in pyproject.toml, or a standalone bnconform.toml.

Found like ruff and mypy find theirs: `--config PATH` if given, else the nearest
bnconform.toml or pyproject.toml with a `[tool.bnconform]` table, walking up from the
working directory and stopping at a repository root (.git/.hg). Every value is validated
here; an unknown key or a bad value is one line `FILE:LINE: [table] key: problem` (exit 2).
Relative paths resolve against the file's directory. Importing this loads no torch.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bnconform.errors import UsageError
from bnconform.options import DEVICES, FORMATS, PROFILES, SEVERITIES
from bnconform.waivers import Waiver

TOP_KEYS = ("targets", "spec", "formats", "output", "fail-on", "waivers", "seed", "device", "profile", "timeout")
TARGET_KEYS = ("target", "spec", "init", "ranks")
WAIVER_KEYS = ("code", "reason", "target", "expires")


class ConfigError(UsageError):
    """A configuration file is malformed; the message names the file, line and key."""


@dataclass(frozen=True)
class TargetEntry:
    target: str
    spec: str | None = None
    init: Mapping[str, object] = field(default_factory=dict)
    ranks: tuple[int, ...] | None = None
    line: int = 0


@dataclass(frozen=True)
class Config:
    """Validated settings of one file; None means "not set here" (the CLI default applies)."""

    path: Path | None = None
    targets: tuple[TargetEntry, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)  # option dest -> value ("fail_on": "warning")

    def get(self, dest: str, default: Any = None) -> Any:
        return self.values.get(dest, default)


def find_config(start: Path | None = None) -> Path | None:
    """The nearest bnconform.toml, or pyproject.toml with [tool.bnconform], up to the repository root."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        own = candidate / "bnconform.toml"
        if own.is_file():
            return own
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and _has_table(pyproject):
            return pyproject
        if (candidate / ".git").exists() or (candidate / ".hg").exists():
            return None
    return None


def _has_table(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        # a broken pyproject that has our table is ours to report (load_config names the line);
        # one without it is not ours to judge and is skipped
        return "tool.bnconform" in text
    return isinstance(doc.get("tool"), dict) and "bnconform" in doc["tool"]


def shadowed_pyproject(found: Path) -> Path | None:
    """The pyproject.toml with a [tool.bnconform] table beside a bnconform.toml that wins over it."""
    pyproject = found.parent / "pyproject.toml"
    return pyproject if found.name == "bnconform.toml" and pyproject.is_file() and _has_table(pyproject) else None


def load_config(path: Path | str | None = None, *, search: bool = True) -> Config:
    """Load `path`, or the file `find_config` finds (when `search`); an empty Config when none."""
    found = Path(path) if path is not None else (find_config() if search else None)
    if found is None:
        return Config()
    if path is None and (shadowed := shadowed_pyproject(found)) is not None:
        print(f"bnconform: note: using {found}; the [tool.bnconform] table of {shadowed.name} beside it is "
              "ignored (pass --config to choose)", file=sys.stderr)
    try:
        text = found.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--config {found}: cannot read: {exc.strerror or exc}") from None
    return parse_config(text, found)


def parse_config(text: str, path: Path) -> Config:
    src = _Source(text, path, "tool.bnconform" if path.name == "pyproject.toml" else "")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise ConfigError(f"{path.name}:{line.group(1) if line else 1}: TOML syntax error: {exc}") from None
    table = doc.get("tool", {}).get("bnconform", {}) if src.prefix else doc
    if not isinstance(table, dict):
        raise src.fail(None, "must be a table")
    for key in table:
        if key not in TOP_KEYS:
            raise src.fail(key, f"unknown key; valid keys: {', '.join(TOP_KEYS)}")
    base = path.resolve().parent
    values = {dest: parse(src, key, table[key], base) for key, (dest, parse) in _VALUES.items() if key in table}
    targets = tuple(_target(src, item, i, base) for i, item in enumerate(_list(src, "targets", table)))
    waivers = tuple(_waiver(src, item, i) for i, item in enumerate(_list(src, "waivers", table)))
    return Config(path=path, targets=targets, waivers=waivers, values=values)


@dataclass(frozen=True)
class _Source:
    text: str
    path: Path
    prefix: str  # "tool.bnconform" in a pyproject, "" in bnconform.toml

    def header(self, sub: str = "") -> str:
        name = ".".join(p for p in (self.prefix, sub) if p)
        return f"[{name}] " if name else ""

    def fail(self, key: str | None, problem: str, sub: str = "", index: int = 0) -> ConfigError:
        line = self.line(key, sub, index)
        return ConfigError(f"{self.path.name}:{line}: {self.header(sub)}{key + ': ' if key else ''}{problem}")

    def line(self, key: str | None, sub: str = "", index: int = 0) -> int:
        """Best line for `key` in the table (or the index-th `[[table.sub]]`); tomllib gives no positions."""
        table = ".".join(p for p in (self.prefix, sub) if p)
        lines, current, seen, start = self.text.splitlines(), "", -1, 1
        for number, raw in enumerate(lines, 1):
            header = re.match(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?", raw)
            if header:
                current = re.sub(r"\s*\.\s*", ".", header.group(1).replace('"', ""))
                seen += current == table and sub != ""
                if current == table and (not sub or seen == index):
                    start = number
                continue
            in_table = current == table and (not sub or seen == index)
            if key and in_table and re.match(rf"\s*\"?{re.escape(key)}\"?\s*=", raw):
                return number
        return start if table else 1


def _list(src: _Source, key: str, table: Mapping[str, Any]) -> list[Any]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise src.fail(key, f"must be an array, got {type(value).__name__}")
    return value


def _string(src: _Source, key: str, value: Any, _: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        raise src.fail(key, f"must be a non-empty string, got {value!r}")
    return value


def _spec(src: _Source, key: str, value: Any, base: Path) -> str:
    text = _string(src, key, value, base)
    return str(base / text) if text.endswith(".toml") else text  # a path is relative to the file


def _output(src: _Source, key: str, value: Any, base: Path) -> str:
    return str(base / _string(src, key, value, base))


def _choice(choices: tuple[str, ...]) -> Callable[[_Source, str, Any, Path], str]:
    def parse(src: _Source, key: str, value: Any, _: Path) -> str:
        if value not in choices:
            raise src.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return str(value)

    return parse


def _formats(src: _Source, key: str, value: Any, _: Path) -> list[str]:
    if not isinstance(value, list) or not value or not all(v in FORMATS for v in value):
        raise src.fail(key, f"must be a non-empty array of {', '.join(FORMATS)}, got {value!r}")
    return list(value)


def _number(kind: type) -> Callable[[_Source, str, Any, Path], Any]:
    def parse(src: _Source, key: str, value: Any, _: Path) -> Any:
        wrong_kind = kind is int and not isinstance(value, int)
        if isinstance(value, bool) or not isinstance(value, int | float) or wrong_kind:
            raise src.fail(key, f"must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        return kind(value)

    return parse


def _seconds(src: _Source, key: str, value: Any, base: Path) -> float:
    seconds = _number(float)(src, key, value, base)
    if not 0 < seconds < float("inf"):
        raise src.fail(key, f"must be a positive, finite number of seconds, got {value!r}")
    return seconds


_VALUES: dict[str, tuple[str, Callable[[_Source, str, Any, Path], Any]]] = {
    "spec": ("spec", _spec),
    "formats": ("formats", _formats),
    "output": ("output", _output),
    "fail-on": ("fail_on", _choice(SEVERITIES)),
    "seed": ("seed", _number(int)),
    "device": ("device", _choice(DEVICES)),
    "profile": ("profile", _choice(PROFILES)),
    "timeout": ("timeout", _seconds),
}


def _target(src: _Source, item: Any, index: int, base: Path) -> TargetEntry:
    line = src.line("targets")
    if isinstance(item, str):
        return TargetEntry(target=_file_target(item, base), line=line)
    if not isinstance(item, dict):
        raise src.fail("targets", f"entry {index + 1} must be a string or a table, got {item!r}")
    for key in item:
        if key not in TARGET_KEYS:
            raise src.fail("targets", f"entry {index + 1}: unknown key {key!r}; valid keys: {', '.join(TARGET_KEYS)}")
    if not isinstance(item.get("target"), str) or not item["target"].strip():
        raise src.fail("targets", f"entry {index + 1}: 'target' must be a non-empty string")
    init = item.get("init", {})
    if not isinstance(init, dict):
        raise src.fail("targets", f"entry {index + 1}: 'init' must be a table of constructor arguments")
    ranks = item.get("ranks")
    if ranks is not None and (not isinstance(ranks, list) or not ranks
                              or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 2 for r in ranks)):
        raise src.fail("targets", f"entry {index + 1}: 'ranks' must be a non-empty array of integers >= 2")
    spec = _spec(src, "targets", item["spec"], base) if "spec" in item else None
    return TargetEntry(_file_target(item["target"], base), spec, dict(init), tuple(ranks) if ranks else None, line)


def _file_target(text: str, base: Path) -> str:
    """`src/bn.py:BN` is relative to the config file, not to wherever bnconform runs."""
    left, _, name = text.strip().rpartition(":")
    if left.endswith(".py") and not Path(left).is_absolute():
        return f"{base / left}:{name}"
    return text.strip()


def _waiver(src: _Source, item: Any, index: int) -> Waiver:
    from bnconform.registry import known_codes  # imports the checks (torch): only with waivers configured

    if not isinstance(item, dict):
        raise src.fail("waivers", f"entry {index + 1} must be a table ([[...waivers]])")
    fail = lambda key, problem: src.fail(key, problem, "waivers", index)  # noqa: E731
    for key in item:
        if key not in WAIVER_KEYS:
            raise fail(key, f"unknown key; valid keys: {', '.join(WAIVER_KEYS)}")
    code, reason = item.get("code"), item.get("reason")
    if not isinstance(code, str) or code not in known_codes():
        raise fail("code", f"{code!r} is not a finding code (see `bnconform explain CODE`)")
    if not isinstance(reason, str) or not reason.strip():
        raise fail("reason" if "reason" in item else None, "a waiver needs a non-empty reason"
                   + ("" if "reason" in item else f" (waiver of {code}: add reason = \"why it is accepted\")"))
    target = item.get("target")
    if target is not None and (not isinstance(target, str) or not target.strip()):
        raise fail("target", f"must be a non-empty string (a glob), got {target!r}")
    expires = item.get("expires")
    if isinstance(expires, str):
        try:
            expires = dt.date.fromisoformat(expires)
        except ValueError:
            raise fail("expires", f"{expires!r} is not a date (YYYY-MM-DD)") from None
    if expires is not None and (not isinstance(expires, dt.date) or isinstance(expires, dt.datetime)):
        raise fail("expires", f"must be a date like 2026-12-31, got {expires!r}")
    if target is not None and "/" in target and not target.startswith(("/", "*")):
        target = str(src.path.resolve().parent / target)  # file targets are resolved the same way
    return Waiver(code, reason.strip(), target, expires, f"{src.path.name}:{src.line(None, 'waivers', index)}")
