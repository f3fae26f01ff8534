"""Wall time of a full `bnconform check torch.nn:BatchNorm2d` against `python -c "import torch"`.

Every measurement is a fresh process, timed from spawn to exit, so the numbers include
interpreter start-up and imports exactly as a user (or CI) sees them. The check must stay
within 3x the import time (issue 2, item 12); this script reports the ratio and never fails
on it: timings belong in a table, not in an assertion.

    python benchmarks/bench_check.py [--runs 5] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

TARGET = "torch.nn:BatchNorm2d"


@dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]


@dataclass(frozen=True)
class Timing:
    name: str
    command: str
    runs_s: list[float]
    median_s: float
    ratio_to_import: float


def bnconform_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m bnconform`."""
    script = Path(sys.executable).with_name("bnconform")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bnconform"]


def cases(out_dir: Path) -> list[Case]:
    check = [*bnconform_command(), "check", TARGET, "--output", str(out_dir)]
    return [
        Case('python -c "import torch"', [sys.executable, "-c", "import torch"]),
        Case("bnconform check (all formats)", check),
        Case("bnconform check --format json,md", [*check, "--format", "json,md"]),
    ]


def wall_time(argv: list[str]) -> float:
    """Seconds from spawn to exit; a non-zero exit is an error (torch BN must pass)."""
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
    return elapsed


def measure(runs: int, out_dir: Path) -> list[Timing]:
    all_cases = cases(out_dir)
    for case in all_cases:  # warm-up: page cache, .pyc files; not counted
        wall_time(case.argv)
    samples: dict[str, list[float]] = {case.name: [] for case in all_cases}
    for _ in range(runs):  # interleaved, so a burst of load hits every case alike
        for case in all_cases:
            samples[case.name].append(wall_time(case.argv))
    baseline = statistics.median(samples[all_cases[0].name])
    return [
        Timing(
            case.name,
            " ".join(case.argv),
            [round(s, 3) for s in samples[case.name]],
            round(statistics.median(samples[case.name]), 3),
            round(statistics.median(samples[case.name]) / baseline, 2),
        )
        for case in all_cases
    ]


def table(timings: list[Timing]) -> str:
    from tabulate import tabulate

    rows = [
        (t.name, f"{t.median_s:.2f}", f"{min(t.runs_s):.2f}", f"{max(t.runs_s):.2f}", f"{t.ratio_to_import:.2f}x")
        for t in timings
    ]
    return tabulate(rows, headers=("command", "median s", "min s", "max s", "vs import torch"))


def machine() -> dict[str, object]:
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (default 5)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    out_dir = Path(tempfile.mkdtemp(prefix="bnconform-bench-"))
    try:
        before = machine()
        timings = measure(args.runs, out_dir)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    print(table(timings))
    print(
        f"\n{args.runs} runs each, median; {before['cpus']} CPUs, load average before "
        f"{before['load_average']}, after {[round(x, 2) for x in os.getloadavg()]}"
    )
    if args.json:
        payload = {"machine": before, "runs": args.runs, "timings": [asdict(t) for t in timings]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
