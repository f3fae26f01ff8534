"""Terminal conventions of the CLI: colour, width, warnings, broken pipes, exit codes.

Results (the verdict, the findings) go to stdout; warnings and errors to stderr. Colour
follows pytest's order of precedence; a closed stdout ends quietly, as in mypy.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bnconform.render.sanitize import inert

COLORS = ("auto", "always", "never")
BUG_HINT = "this is a bug in bnconform; please report it with the command line and BNCONFORM_DEBUG=1 output"
INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


def use_color(stream: TextIO, flag: str = "auto") -> bool:
    """pytest's rule: --color wins, then PY_COLORS=1/0, NO_COLOR, FORCE_COLOR (non-empty), then a TTY."""
    if flag in ("always", "never"):
        return flag == "always"
    py_colors = os.environ.get("PY_COLORS")
    if py_colors in ("0", "1"):
        return py_colors == "1"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return is_tty(stream) and os.environ.get("TERM") != "dumb"


def is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or fake stream
        return False


def width(stream: TextIO) -> int | None:
    """Columns to fit lines into on a terminal; None (full text) when piped or redirected."""
    if not is_tty(stream):
        return None
    return max(shutil.get_terminal_size().columns, 40)


def warn(message: str) -> None:
    """A problem that does not change the verdict (a report that could not be written)."""
    print(f"bnconform: warning: {inert(message)}", file=sys.stderr, flush=True)


def write_out(text: str, stream: TextIO | None = None) -> bool:
    """Write and flush; False when the reader has gone (`bnconform check ... | head`).

    After a broken pipe, /dev/null replaces stdout so the interpreter's final flush at exit
    cannot fail again (CPython's "Note on SIGPIPE"; mypy does the same).
    """
    stream = sys.stdout if stream is None else stream
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        _silence(stream)
        return False
    return True


def _silence(stream: TextIO) -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (tests' StringIO)
        pass


def guarded_main(command: Callable[[], int], usage_error: type[Exception], usage_code: int) -> int:
    """Run `command` and map what escapes it to an exit code and one line on stderr:
    bad input 2, Ctrl-C 130, a broken pipe the code already decided (or 0), anything else 3."""
    try:
        code = command()
        sys.stdout.flush()  # inside the try: a reader gone before the last flush is a broken pipe too
        return code
    except usage_error as error:
        print(f"bnconform: error: {inert(str(error))}", file=sys.stderr)  # may quote user exception text
        return usage_code
    except KeyboardInterrupt:
        print("bnconform: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        _silence(sys.stdout)
        return 0
    except Exception as error:  # noqa: BLE001 - a bug of ours: one line unless debugging
        if os.environ.get("BNCONFORM_DEBUG"):
            raise
        print(f"bnconform: internal error: {type(error).__name__}: {inert(str(error))}\n{BUG_HINT}", file=sys.stderr)
        return 3


def hypothesis_home() -> Path:
    """Where hypothesis keeps its files during our runs: the user's cache, never their cwd."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bnconform" / "hypothesis"


def keep_hypothesis_out_of_cwd() -> None:
    """Hypothesis writes `.hypothesis/` (an example database, a constants cache) into the cwd.
    Our own runs use database=None; this moves the rest to the cache directory. An environment
    variable, so a worker process started from here inherits it; a user's own choice wins."""
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(hypothesis_home()))
