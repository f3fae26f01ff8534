"""BatchNorm implementations against torch.nn.BatchNorm2d: the cases `bnconform bench` times.

The same callables, passes and extra_info as `bnconform bench TARGET --quick`, so a
`--benchmark-json` file of this suite can be a `bnconform bench --compare` baseline too
(per target: the torch rows are shared).
"""

from __future__ import annotations

import pytest
import torch
from conftest import record

from bnconform.bench.bandwidth import PASSES
from bnconform.bench.cases import ORDER, Case, Setting, build_cases
from bnconform.bench.shapes import QUICK_SHAPES, shape_text
from bnconform.construct import Builder
from bnconform.target import load_target

TARGETS = ("torch.nn:BatchNorm2d", "bnconform.examples.tutorial:BatchNorm")
IDS = [f"{p}-{shape_text(s)}-{role}-{repeat}" for s in QUICK_SHAPES for p in PASSES for role, repeat in ORDER]


@pytest.fixture(scope="module", params=TARGETS)
def cases(request: pytest.FixtureRequest) -> tuple[str, dict[str, Case]]:
    target = load_target(request.param)
    built = build_cases(target, Builder(target), list(QUICK_SHAPES), PASSES, Setting("cpu", torch.float32))
    return request.param, {c.test_id: c for c in built}


@pytest.mark.parametrize("case_id", IDS)
def test_batchnorm(benchmark, cases: tuple[str, dict[str, Case]], case_id: str) -> None:  # noqa: ANN001
    target, by_id = cases
    case = by_id[case_id]
    group = f"{target} {case.pass_name} {shape_text(case.shape)}"
    benchmark.group = group
    benchmark.extra_info.update(case.info)
    benchmark(case.call)
    record(benchmark, group, case.role)
