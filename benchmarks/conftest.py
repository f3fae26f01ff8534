"""The benchmark suite: `pytest benchmarks --benchmark-enable` (pytest-benchmark).

Two kinds of benchmark share it: bnconform's own speed (test_check_speed.py: a full check
against `python -c "import torch"`) and BatchNorm implementations against torch's
(test_batchnorm_speed.py: the cases `bnconform bench` times). At the end it prints the
ratios the README quotes; `--benchmark-json FILE` keeps every statistic.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

# group -> {name: median seconds}, filled by the tests when benchmarks are enabled
MEDIANS: dict[str, dict[str, float]] = defaultdict(dict)
BASELINES = {"check vs import torch": 'python -c "import torch"'}


def record(benchmark: object, group: str, name: str) -> None:
    """Keep the median of a finished benchmark, the lowest over repeats of the same name
    (none when --benchmark-disable ran it once)."""
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is not None:
        MEDIANS[group][name] = min(stats.median, MEDIANS[group].get(name, float("inf")))


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(1)  # as `bnconform bench` by default: stable on a shared machine


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not MEDIANS:
        return
    terminalreporter.section("bnconform: ratios of medians")
    for group, medians in MEDIANS.items():
        base_name = BASELINES.get(group, "torch")
        base = medians.get(base_name)
        for name, median in medians.items():
            if base and name != base_name:
                terminalreporter.write_line(f"{group}: {name}: {median:.4f} s = {median / base:.2f}x {base_name}")
