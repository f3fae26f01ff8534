"""`bnconform bench TARGET`: the subcommand's options and its run. cli.py only registers it."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bnconform.errors import UsageError

from .model import BYTES_MODEL

FORMATS = ("md", "html")


def add_parser(subcommands: Any) -> argparse.ArgumentParser:
    bench = subcommands.add_parser(
        "bench", help="time a BatchNorm against torch.nn.BatchNorm and the memory-bandwidth limit",
        description="Time forward, forward+backward and eval forward of TARGET and of the matching "
                    "torch.nn.BatchNorm with pytest-benchmark; report ratios, GB/s and peak memory.",
        epilog=BYTES_MODEL, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("target", help="module:Name or path/to/file.py:Name")
    bench.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="default: cpu")
    bench.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                       help="default: float32")
    bench.add_argument("--shapes", nargs="+", metavar="N,C,H,W", default=None,
                       help="input shapes, 2-D to 5-D (default: a quick set of CNN activations)")
    size = bench.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="full", action="store_false", help="few rounds, small shapes (default)")
    size.add_argument("--full", dest="full", action="store_true",
                      help="more rounds; ResNet-sized shapes scaled to the device's memory")
    bench.set_defaults(full=False)
    bench.add_argument("--threads", type=int, default=1, metavar="N",
                       help="torch CPU threads while timing (default 1: stable on shared machines; "
                            "0 = torch's default)")
    bench.add_argument("--compare", metavar="BASELINE.json", default=None,
                       help="a bnconform-bench.json or --save file of an earlier run")
    bench.add_argument("--fail-if-slower", metavar="PCT", default=None,
                       help="with --compare: exit 1 if any target median got slower by more than PCT (e.g. 10%%)")
    bench.add_argument("--fail-if-nonconforming", action="store_true",
                       help="exit 1 if the quick forward check finds the target non-conforming")
    bench.add_argument("--save", metavar="NAME", default=None,
                       help="also save the run in pytest-benchmark's storage (./.benchmarks/)")
    bench.add_argument("--format", default="", dest="formats",
                       help="comma-separated extra reports: md,html (the JSON is always written)")
    bench.add_argument("--output", default="reports", help="directory for the reports (default: reports/)")
    return bench


def validate(args: argparse.Namespace) -> tuple[float | None, dict[str, Any] | None, list[str]]:
    """Every usage problem is found before any timing starts."""
    import importlib.util

    import torch

    from .compare import load_baseline, parse_threshold

    if importlib.util.find_spec("pytest_benchmark") is None:
        raise UsageError("bnconform bench needs pytest-benchmark: pip install pytest pytest-benchmark")

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
    if args.threads < 0:
        raise UsageError(f"--threads {args.threads}: expected 0 (torch's default) or more")
    if args.fail_if_slower is not None and args.compare is None:
        raise UsageError("--fail-if-slower needs --compare BASELINE.json")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UsageError(f"--format {','.join(unknown)}: expected any of {','.join(FORMATS)}")
    if args.save is not None and not args.save.replace("-", "").replace("_", "").isalnum():
        raise UsageError(f"--save {args.save!r}: use letters, digits, - and _ only")
    threshold = parse_threshold(args.fail_if_slower) if args.fail_if_slower is not None else None
    baseline = load_baseline(args.compare) if args.compare is not None else None
    return threshold, baseline, formats


def run(args: argparse.Namespace) -> int:
    from .bench import bench
    from .table import html_page, markdown, terminal

    started = time.perf_counter()
    threshold, baseline, formats = validate(args)
    report, written = bench(args, baseline, threshold)
    print(terminal(report))
    out = Path(args.output)
    pages = {"md": (markdown, "bnconform-bench.md"), "html": (html_page, "bnconform-bench.html")}
    for fmt in formats:
        render, name = pages[fmt]
        (out / name).write_text(render(report), encoding="utf-8")
        written.append(out / name)
    for path in written:
        print(f"wrote {path}")
    print(f"bench finished in {time.perf_counter() - started:.1f} s")
    if report.slower or (args.fail_if_nonconforming and not report.conformance.conforms):
        return 1
    return 0


def warn(message: str) -> None:
    print(f"bnconform: warning: {message}", file=sys.stderr)
