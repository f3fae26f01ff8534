"""bnconform's own speed: a full default check of torch.nn:BatchNorm2d against `import torch`.

Each round is a fresh process timed from spawn to exit (bench_check.wall_time), as a user or
CI sees it. pytest-benchmark runs one command's rounds together; bench_check.py interleaves
them (better on a loaded machine) and stays the standalone script.
"""

from __future__ import annotations

from pathlib import Path

import bench_check
import pytest
from conftest import record

GROUP = "check vs import torch"
NAMES = ['python -c "import torch"', "bnconform check (all formats)", "bnconform check --format json,md"]


@pytest.mark.parametrize("name", NAMES)
def test_wall_time(benchmark, name: str, tmp_path: Path) -> None:  # noqa: ANN001 - fixture
    case = next(c for c in bench_check.cases(tmp_path) if c.name == name)
    bench_check.wall_time(case.argv)  # warm-up: page cache and .pyc files are not the check
    benchmark.group = GROUP
    benchmark.extra_info["command"] = " ".join(case.argv)
    benchmark.pedantic(bench_check.wall_time, args=(case.argv,), rounds=5, iterations=1)
    record(benchmark, GROUP, name)
