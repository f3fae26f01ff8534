"""Presenting one result on the command line: reports, step summary, terminal summary, exit code.

The exit code is result["summary"]["exit_code"], decided once by --fail-on; nothing here
can change it. A report or step summary that cannot be written is a warning naming the
path; a reader that closes stdout early (`| head`) only stops the printing.

`--output -` writes the JSON report to stdout (for `| jq`) and no files; the human summary
then goes to stderr, so both stay readable and the JSON stays parseable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from bnconform import console, live
from bnconform.errors import UsageError
from bnconform.options import FORMATS

STDOUT = "-"


def check_output_choice(args: argparse.Namespace) -> None:
    """`--output -` carries only the JSON report; refuse other explicitly requested formats."""
    if getattr(args, "output", None) != STDOUT:
        return
    formats = getattr(args, "formats", None)
    explicit = formats and list(formats) != list(FORMATS)  # the full default list is not a request
    if explicit and set(formats) != {"json"}:
        raise UsageError(f"--output - writes only the JSON report to stdout; --format {','.join(formats)} "
                         "needs a directory (--output DIR)")
    args.formats = ["json"]


def verbosity(args: argparse.Namespace) -> int:
    return -1 if getattr(args, "quiet", False) else 1 if getattr(args, "verbose", False) else 0


def present(args: argparse.Namespace, result: Mapping[str, Any], out_dir: Path) -> int:
    """Write `result`'s reports into `out_dir` (or the JSON to stdout), print the summary."""
    from bnconform.render import FORMATS, append_github_summary, write_reports

    to_stdout = str(out_dir) == STDOUT
    written = {} if to_stdout else write_reports(result, out_dir, list(getattr(args, "formats", None) or FORMATS))
    append_github_summary(result)
    human = sys.stderr if to_stdout else sys.stdout
    with live.paused():
        if to_stdout:
            console.write_out(FORMATS["json"][0](result), sys.stdout)
        console.write_out(summary_text(args, result, human), human)
        if written and verbosity(args) >= 0:
            console.write_out("\n" + "".join(f"wrote {fmt:5} {path}\n" for fmt, path in written.items()), human)
    return int(result["summary"]["exit_code"])


def summary_text(args: argparse.Namespace, result: Mapping[str, Any], stream: TextIO) -> str:
    from bnconform.render.terminal import render

    color = console.use_color(stream, getattr(args, "color", None) or "auto")
    return render(result, width=console.width(stream), color=color, verbosity=verbosity(args))
