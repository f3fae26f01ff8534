"""GitHub Actions workflow annotations: `::error title=bnconform (CODE),file=F,line=L::MESSAGE`.

Printed under GITHUB_ACTIONS=true or `--annotate github`. The file and line are where the
class is defined (found by reading the source, never by importing the user's code again),
relative to GITHUB_WORKSPACE; both are left out when unknown (an annotation on line 0 is
dropped). GitHub shows at most 10 annotations of each kind per step, so the rest are counted
in one notice. Escaping follows actions/toolkit: data escapes %, CR, LF; properties also : and ,.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bnconform.render import common as c

LIMIT = 10
KINDS = {"error": "error", "warning": "warning"}  # info findings stay in the reports


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(result: Mapping[str, Any]) -> str:
    """One annotation line per active error/warning, most severe first, at most LIMIT per kind."""
    where = location(result)
    props = "" if where is None else f",file={escape_property(where[0])},line={where[1]}"
    lines, left = [], {kind: 0 for kind in KINDS}
    shown = {kind: 0 for kind in KINDS}
    for finding in c.active_findings(result):  # not waived, most severe first
        kind = KINDS.get(c.text(finding.get("severity")))
        if kind is None:
            continue
        if shown[kind] >= LIMIT:
            left[kind] += 1
            continue
        shown[kind] += 1
        code = c.one_line(finding.get("code"))
        title = escape_property(f"bnconform ({code})")
        lines.append(f"::{kind} title={title}{props}::{escape_data(message(result, finding))}")
    if any(left.values()):
        more = ", ".join(f"{n} more {kind}s" for kind, n in left.items() if n)
        lines.append(f"::notice title=bnconform::{escape_data(more + ' in the job summary and the reports')}")
    return "".join(line + "\n" for line in lines)


def message(result: Mapping[str, Any], finding: Mapping[str, Any]) -> str:
    target = c.one_line(c.section(result, "target").get("text"))
    return (f"{target}: {c.text(finding.get('message'))}\nexpected: {c.one_line(finding.get('expected'))}; "
            f"observed: {c.one_line(finding.get('observed'))}\nfix: {c.one_line(finding.get('hint'))}")


def location(result: Mapping[str, Any]) -> tuple[str, int] | None:
    """(file relative to GITHUB_WORKSPACE, 1-based line of the definition), or None when unknown."""
    target = c.section(result, "target")
    text = str(target.get("text") or "")
    left, _, attr = text.rpartition(":")
    path = target.get("file") or source_file(left)
    if not path or not attr:
        return None
    line = definition_line(Path(path), attr)
    if line is None:
        return None
    workspace = os.environ.get("GITHUB_WORKSPACE")
    shown = Path(path)
    if workspace:
        try:
            shown = Path(path).resolve().relative_to(Path(workspace).resolve())
        except ValueError:
            pass  # outside the checkout (an installed package): keep the absolute path
    return shown.as_posix(), line


def source_file(module: str) -> str | None:
    if not module or module.endswith(".py"):
        return module or None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def definition_line(path: Path, attr: str) -> int | None:
    """Line of `class Name` / `def Name` / `Name = ...` (dotted names walk into classes)."""
    try:
        tree: ast.AST = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    line = None
    for part in attr.split("."):
        found = next((node for node in getattr(tree, "body", []) if defines(node, part)), None)
        if found is None:
            return line
        tree, line = found, found.lineno
    return line


def defines(node: ast.AST, name: str) -> bool:
    if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        return node.name == name
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    return isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name
