"""Command line: check / specs / explain / report. Bad input is one line and exit code 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from bnconform import __version__
from bnconform.bench import command as bench_command
from bnconform.errors import UsageError
from bnconform.options import CHECK_OPTIONS, FORMATS, csv_formats


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage problem on one line instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> Parser:
    parser = Parser(prog="bnconform", description="Conformance checks for BatchNorm implementations.")
    parser.add_argument("--version", action="version", version=f"bnconform {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    check = commands.add_parser("check", help="check a BatchNorm class against a spec")
    check.add_argument("target", help="module:Name or path/to/file.py:Name")
    for option in CHECK_OPTIONS:
        check.add_argument(*option.flags, help=option.help, **option.kwargs)
    bench_command.add_parser(commands)
    commands.add_parser("specs", help="list the built-in specs")
    explain = commands.add_parser("explain", help="what a finding code means and how to fix it")
    explain.add_argument("code")
    report = commands.add_parser("report", help="render a saved bnconform-report.json again")
    report.add_argument("result", help="path to bnconform-report.json")
    report.add_argument(
        "--format",
        type=csv_formats,
        default=["md", "html", "junit"],
        dest="formats",
        help=f"comma-separated formats: {','.join(FORMATS)} (default: md,html,junit)",
    )
    report.add_argument("--output", default=None, help="directory (default: next to the JSON file)")
    return parser


def command_check(args: argparse.Namespace) -> int:
    from bnconform.api import run_check
    from bnconform.construct import parse_init
    from bnconform.render import append_github_summary, write_reports
    from bnconform.render.terminal import render as terminal

    result = run_check(
        args.target,
        spec=args.spec,
        init=parse_init(args.init),
        seed=args.seed,
        device=args.device,
        profile=args.profile,
        ignore=args.ignore,
        fail_on=args.fail_on,
        timeout_s=args.timeout,
    )
    written = write_reports(result, Path(args.output), args.formats)
    append_github_summary(result)
    print(terminal(result))
    for fmt, path in written.items():
        print(f"wrote {fmt:5} {path}")
    return int(result["summary"]["exit_code"])


def command_specs(_: argparse.Namespace) -> int:
    from tabulate import tabulate

    from bnconform.spec import load_builtin_specs

    rows = [
        (
            s.name,
            s.momentum_convention,
            s.momentum_default,
            s.running_var_estimator,
            s.eps,
            s.channel_axis,
            s.description,
        )
        for s in load_builtin_specs()
    ]
    headers = ("spec", "momentum", "default", "running var", "eps", "channel axis", "description")
    print(tabulate(rows, headers=headers))
    return 0


def command_explain(args: argparse.Namespace) -> int:
    from bnconform.registry import all_checks

    checks = {c.code: c for c in all_checks()}
    if args.code not in checks:
        raise UsageError(f"unknown finding code {args.code!r}; known codes: {', '.join(checks)}")
    c = checks[args.code]
    requires = f"\nRequires:  {', '.join(c.requires)}" if c.requires else ""
    print(
        f"{c.code} ({c.severity.value}, area {c.area}{', profile ' + c.profile if c.profile != 'default' else ''})\n"
        f"Checks:    {c.title}\nWhy:       {c.why}\nFix:       {c.hint}{requires}"
    )
    return 0


def command_report(args: argparse.Namespace) -> int:
    from bnconform.render import write_reports
    from bnconform.render.json import load

    result = load(args.result)
    out = Path(args.output) if args.output else Path(args.result).parent
    for fmt, path in write_reports(result, out, args.formats).items():
        print(f"wrote {fmt:5} {path}")
    return 0


COMMANDS = {"check": command_check, "specs": command_specs, "explain": command_explain, "report": command_report}
COMMANDS["bench"] = bench_command.run


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as error:
        print(f"bnconform: error: {error}", file=sys.stderr)
        return UsageError.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - a bug of ours: one line unless debugging
        if os.environ.get("BNCONFORM_DEBUG"):
            raise
        print(
            f"bnconform: internal error: {type(error).__name__}: {error} (set BNCONFORM_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
