"""Option definitions shared by every front end (CLI today); importing this loads no torch."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("json", "md", "html", "junit")
DEVICES = ("cpu", "cuda", "auto")
PROFILES = ("default", "thorough")
SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    help: str
    kwargs: dict[str, Any] = field(default_factory=dict)


def csv_formats(text: str) -> list[str]:
    formats = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        # ArgumentTypeError, not ValueError: argparse shows its message instead of "invalid value".
        bad = unknown[0] if unknown else text
        valid = ", ".join(FORMATS)
        raise argparse.ArgumentTypeError(f"unknown format {bad!r}; choose from {valid}")
    return formats


def csv_ranks(text: str) -> list[int]:
    """"2,3" -> [2, 3]: input ranks to check when discovery cannot decide (2 to 5)."""
    try:
        ranks = [int(r) for r in text.split(",") if r.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ranks {text!r}: expected comma-separated integers such as 2,3") from None
    if not ranks or any(not 2 <= r <= 5 for r in ranks):
        raise argparse.ArgumentTypeError(f"--ranks {text!r}: each rank must be 2, 3, 4 or 5")
    return ranks


CHECK_OPTIONS: tuple[Option, ...] = (
    Option(("--spec",), "built-in spec name or path to a .toml spec (default: pytorch)", {"default": "pytorch"}),
    Option(
        ("--init",),
        "constructor argument KEY=VALUE (Python literal, never evaluated); repeatable",
        {"action": "append", "default": [], "metavar": "KEY=VALUE"},
    ),
    Option(
        ("--ranks",),
        "input ranks to check, e.g. 2,3 (default: discovered by calling the class with ranks 2-5)",
        {"type": csv_ranks, "default": None},
    ),
    Option(
        ("--device",),
        "cpu, cuda, or auto (the CPU run plus the CUDA checks when a GPU is available)",
        {"choices": DEVICES, "default": "cpu"},
    ),
    Option(
        ("--format",),
        f"comma-separated report formats: {','.join(FORMATS)} (default: all)",
        {"type": csv_formats, "default": list(FORMATS), "dest": "formats"},
    ),
    Option(
        ("--output",),
        "directory for the reports (default: reports/); '-' writes the JSON report to stdout instead",
        {"default": "reports"},
    ),
    Option(
        ("--ignore",),
        "waive a finding code (still reported, never fails the run); repeatable",
        {"action": "append", "default": [], "metavar": "CODE"},
    ),
    Option(("--fail-on",), "lowest severity that makes the exit code 1", {"choices": SEVERITIES, "default": "error"}),
    Option(("--seed",), "seed of every probe input and of hypothesis", {"type": int, "default": 0}),
    Option(
        ("--profile",),
        "default (fast) or thorough (more examples, long sequences, gradgradcheck)",
        {"choices": PROFILES, "default": "default"},
    ),
    Option(
        ("--timeout",),
        "seconds one call into the implementation may take before it counts as hung and its worker"
        " process is stopped (default 10; the first call of each kind, e.g. the import or the first"
        " forward, gets twice this for compilation and lazy initialization)",
        {"type": float, "default": 10.0},
    ),
    Option(
        ("--world-size",),
        "SyncBatchNorm checks: spawn N >= 2 processes with torch.distributed (gloo on the CPU; nccl with"
        " --device cuda when every rank has a GPU) and compare every rank with the full-batch reference",
        {"type": int, "default": None, "dest": "world_size", "metavar": "N"},
    ),
    Option(
        ("--distributed",),
        "SyncBatchNorm checks under a launcher (torchrun, SLURM): join the process group its RANK,"
        " WORLD_SIZE, MASTER_ADDR and MASTER_PORT describe; rank 0 writes the reports, all ranks exit alike",
        {"action": "store_true"},
    ),
    Option(
        ("--max-time",),
        "seconds the whole check may take; past it the run stops and reports where (default: no limit)",
        {"type": float, "default": None, "dest": "max_time", "metavar": "SECONDS"},
    ),
)


# Terminal display only: the CLI has them, the pytest plugin (which reuses CHECK_OPTIONS) does not.
COLORS = ("auto", "always", "never")
DISPLAY_OPTIONS: tuple[Option, ...] = (
    Option(("-q", "--quiet"), "print the verdict line only", {"action": "store_true"}),
    Option(
        ("-v", "--verbose"),
        "also list every check with its status and why it was skipped or blocked",
        {"action": "store_true"},
    ),
    Option(
        ("--color",),
        "colour the terminal output: auto (a terminal, honouring NO_COLOR/FORCE_COLOR/PY_COLORS), always, never",
        {"choices": COLORS, "default": "auto"},
    ),
)
