"""Renderers of the canonical result JSON, and writing them to files.

Each format's module is imported only when that format is rendered, so writing just
the JSON report never imports tabulate or matplotlib.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bnconform.errors import UsageError

Renderer = Callable[[Mapping[str, Any]], str]
ErrorHandler = Callable[[Path, OSError], None]


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


def write_reports(
    result: Mapping[str, Any], out_dir: Path, formats: list[str], on_error: ErrorHandler | None = None
) -> dict[str, Path]:
    """Render `result` in each of `formats` into `out_dir`; returns format -> written path.

    A report that cannot be written (a read-only folder, a full disk) is passed to
    `on_error(path, error)` (default: a warning on stderr) and the others are still written:
    the verdict must come out even when one file cannot.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UsageError(
            f"unknown report format {unknown[0]!r}; valid formats: {', '.join(FORMATS)}")
    report_error = on_error or _warn
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        report_error(out_dir, error)
        return {}
    written: dict[str, Path] = {}
    for fmt in dict.fromkeys(formats):  # keep order, drop duplicates
        render, filename = FORMATS[fmt]
        text = render(result)
        try:
            written[fmt] = _write(out_dir / filename, text)
        except OSError as error:
            report_error(out_dir / filename, error)
    return written


def _write(path: Path, text: str) -> Path:
    """Write a unique temporary file next to `path`, then rename it into place.

    mkstemp creates the name with O_EXCL (never follows or reuses a planted symlink), so two
    runs into one folder never share a temp file; the rename is atomic, so a reader sees the
    old report or the new one, never half of one, and the later run wins whole.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a report is as readable as any file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def validate_destinations(out_dir: Path | None) -> None:
    """Refuse, before anything runs, a report folder or step summary that cannot be written.

    Found after the run, the verdict would be lost with the reports (exit 3); found here it is
    one line and exit 2. A folder that does not exist yet must be creatable.
    """
    if out_dir is not None:
        _check_folder(Path(out_dir), "--output")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        path = Path(summary)
        if path.exists() and not path.is_file():
            raise UsageError(f"GITHUB_STEP_SUMMARY {summary!r} is not a file")
        if path.exists() and not os.access(path, os.W_OK):
            raise UsageError(f"GITHUB_STEP_SUMMARY {summary!r} is not writable")
        if not path.exists():
            _check_folder(path.parent, "GITHUB_STEP_SUMMARY's folder")


def _check_folder(folder: Path, what: str) -> None:
    folder = folder.absolute()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{what} {str(folder)!r} is a file, not a folder")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise UsageError(f"{what} {str(folder)!r} cannot be created: {str(existing)!r} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {str(folder)!r} is not writable ({str(existing)!r} refuses new files)")


def append_github_summary(result: Mapping[str, Any], on_error: ErrorHandler | None = None) -> Path | None:
    """Append the Markdown report to $GITHUB_STEP_SUMMARY when it is set (GitHub Actions).

    The Markdown badge reads the run's verdict (result["summary"]), like every other channel.
    An unwritable summary file goes to `on_error` (default: a warning), never a crash.
    """
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    text = FORMATS["md"][0](result) + "\n"
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as error:
        (on_error or _warn)(path, error)
        return None
    return path


def _warn(path: Path, error: OSError) -> None:
    reason = error.strerror or str(error)
    print(f"bnconform: warning: could not write {path}: {reason}", file=sys.stderr, flush=True)
