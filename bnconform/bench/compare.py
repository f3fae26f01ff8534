"""Regression use: compare this run's medians with a saved run, and fail past a threshold.

Runs are matched on (role, pass, shape, dtype, device) from pytest-benchmark's extra_info,
so the baseline may be any JSON this command wrote (--output's bnconform-bench.json or a
--save file); the target's name may differ (a renamed class in a new commit is still the
same benchmark). Only the target's change decides the exit code; torch's change is shown
beside it because it says how much of a difference is the machine, not the code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bnconform.errors import UsageError

Key = tuple[str, str, tuple[int, ...], str, str]


@dataclass(frozen=True)
class Change:
    pass_name: str
    shape: tuple[int, ...]
    role: str
    before_s: float
    after_s: float

    @property
    def change(self) -> float:
        """Relative change of the median: +0.25 is 25% slower."""
        return self.after_s / self.before_s - 1.0


def parse_threshold(text: str) -> float:
    """"10%" or "10" -> 0.10; anything else (or negative) is a one-line UsageError."""
    raw = text.strip().removesuffix("%").strip()
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"--fail-if-slower {text!r}: expected a percentage like 10%") from None
    if not 0 <= value < float("inf"):
        raise UsageError(f"--fail-if-slower {text!r}: expected a percentage >= 0")
    return value / 100.0


def key(benchmark: dict[str, Any]) -> Key | None:
    info = benchmark.get("extra_info") or {}
    try:
        return (str(info["role"]), str(info["pass"]), tuple(int(s) for s in info["shape"]),
                str(info["dtype"]), str(info["device"]))
    except (KeyError, TypeError, ValueError):
        return None  # not a bnconform benchmark (e.g. a pytest-benchmark file of other tests)


def medians(run: dict[str, Any], stat: str = "median") -> dict[Key, float]:
    """A statistic of each benchmark, the lowest over its repeats (cases.ORDER), in run order."""
    found: dict[Key, float] = {}
    for benchmark in run.get("benchmarks", []):
        k = key(benchmark)
        value = (benchmark.get("stats") or {}).get(stat)
        if k is not None and isinstance(value, int | float) and value > 0:
            found[k] = min(float(value), found.get(k, float("inf")))
    return found


def load_baseline(path: str) -> dict[str, Any]:
    """The baseline JSON; a missing or malformed file is a one-line UsageError."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"--compare {path!r}: no such file")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"--compare {path!r}: not a pytest-benchmark JSON file ({error})") from None
    if not isinstance(data, dict) or not medians(data):
        raise UsageError(f"--compare {path!r}: holds no bnconform bench results")
    return data


def require_overlap(baseline: dict[str, Any], planned: list[Key]) -> None:
    """Refuse, before timing anything, a baseline that has none of the planned target cases."""
    if not set(planned) & set(medians(baseline)):
        raise UsageError("--compare: the baseline has no result for this run's passes, shapes, dtype and device")


def compare(baseline: dict[str, Any], current: dict[str, Any]) -> list[Change]:
    """Changes for every benchmark present in both runs, in the current run's order."""
    before = medians(baseline)
    changes = [Change(k[1], k[2], k[0], before[k], after) for k, after in medians(current).items() if k in before]
    if not any(c.role == "target" for c in changes):
        raise UsageError("--compare: the baseline has no result for this run's passes, shapes, dtype and device")
    return changes


def regressions(changes: list[Change], threshold: float) -> list[Change]:
    """The target's benchmarks that got slower by more than `threshold` (0.10 = 10%)."""
    return [c for c in changes if c.role == "target" and c.change > threshold]
