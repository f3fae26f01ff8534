"""Renderers of the canonical result JSON, and writing them to files.

Each format's module is imported only when that format is rendered, so writing just
the JSON report never imports tabulate or matplotlib.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bnconform.errors import UsageError

Renderer = Callable[[Mapping[str, Any]], str]


def _lazy(module: str) -> Renderer:
    """A `render(result)` that imports `module` on first call."""

    def render(result: Mapping[str, Any]) -> str:
        return importlib.import_module(module).render(result)

    render.__qualname__ = render.__name__ = f"render_{module.rsplit('.', 1)[-1]}"
    render.__doc__ = f"Render the result with {module}.render (imported on first use)."
    return render


FORMATS: dict[str, tuple[Renderer, str]] = {
    "json": (_lazy("bnconform.render.json"), "bnconform-report.json"),
    "md": (_lazy("bnconform.render.markdown"), "bnconform-report.md"),
    "html": (_lazy("bnconform.render.html"), "bnconform-report.html"),
    "junit": (_lazy("bnconform.render.junit"), "bnconform-report.xml"),
}


def write_reports(result: Mapping[str, Any], out_dir: Path, formats: list[str]) -> dict[str, Path]:
    """Render `result` in each of `formats` into `out_dir`; returns format -> written path."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UsageError(
            f"unknown report format {unknown[0]!r}; valid formats: {', '.join(FORMATS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for fmt in dict.fromkeys(formats):  # keep order, drop duplicates
        render, filename = FORMATS[fmt]
        written[fmt] = _write(out_dir / filename, render(result))
    return written


def _write(path: Path, text: str) -> Path:
    """Write via a temporary file so a crash never leaves half a report behind."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def append_github_summary(result: Mapping[str, Any]) -> Path | None:
    """Append the Markdown report to $GITHUB_STEP_SUMMARY when it is set (GitHub Actions)."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(FORMATS["md"][0](result) + "\n")
    return path
