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
from bnconform.options import CHECK_OPTIONS, DISPLAY_OPTIONS, FORMATS, csv_formats


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage problem on one line instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> Parser:
    parser = Parser(prog="bnconform", description="Conformance checks for BatchNorm implementations.")
    parser.add_argument("--version", action="version", version=f"bnconform {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    check = commands.add_parser("check", help="check a BatchNorm class against a spec")
    check.add_argument("target", nargs="*", help="module:Name or file.py:Name (default: the configured targets)")
    for option in CHECK_OPTIONS:
        check.add_argument(*option.flags, help=option.help, **option.kwargs)
    add_display_options(check)
    from bnconform import infer, project, scan

    project.add_arguments(check)
    add_display_options(scan.add_parser(commands))  # the same per-target summaries as check
    infer.add_parser(commands)
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


def add_display_options(parser: argparse.ArgumentParser) -> None:
    """-q / -v (exclusive) and --color: how the terminal summary looks (bnconform.present)."""
    loudness = parser.add_mutually_exclusive_group()
    for option in DISPLAY_OPTIONS:
        target = loudness if option.flags[0] in ("-q", "-v") else parser
        target.add_argument(*option.flags, help=option.help, **option.kwargs)


def command_check(args: argparse.Namespace) -> int:
    from bnconform import console, live
    from bnconform.present import check_output_choice
    from bnconform.project import check_command

    check_output_choice(args)
    progress = not getattr(args, "quiet", False) and console.is_tty(sys.stderr) and os.environ.get("TERM") != "dumb"
    with live.showing(sys.stderr, enabled=progress):
        return check_command(args, show_result)  # targets and options from the CLI and [tool.bnconform]


def show_result(args: argparse.Namespace, result: dict, out_dir: Path) -> int:
    """Write one target's reports and print its summary; returns its exit code."""
    from bnconform.present import present

    return present(args, result, out_dir)


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


def command_scan(args: argparse.Namespace) -> int:
    from bnconform.scan import run

    return run(args, show_result)


def command_infer(args: argparse.Namespace) -> int:
    from bnconform.infer import run

    return run(args)


COMMANDS = {"check": command_check, "specs": command_specs, "explain": command_explain, "report": command_report,
            "scan": command_scan, "infer": command_infer}
COMMANDS["bench"] = bench_command.run


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: 0 pass, 1 findings at or above --fail-on, 2 bad input, 3 our bug, 130 Ctrl-C."""
    from bnconform.console import guarded_main, keep_hypothesis_out_of_cwd

    def command() -> int:
        args = build_parser().parse_args(argv)
        keep_hypothesis_out_of_cwd()  # every command that runs checks (check, scan, bench, ...)
        return COMMANDS[args.command](args)

    return guarded_main(command, UsageError, UsageError.exit_code)


if __name__ == "__main__":
    sys.exit(main())
