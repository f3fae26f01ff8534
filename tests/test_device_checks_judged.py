"""How checks/devices judges what the device probes measured (issue 13: mutation survivors).

The CUDA halves of device-transfer and device-parity only run with a GPU; their judging does
not need one. These tests give the checks measured results (the probe cache, as a run fills
it) and say "CUDA available", so the verdicts are pinned on every machine; tests/test_deep_checks
runs the probes themselves on a GPU.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bnconform.checks import devices as device_checks
from bnconform.probes import devices as device_probes
from tests._contexts import context, measured

CPU_PROBLEM = ".half(): running_mean stays torch.float32"
CUDA_PROBLEM = ".to('cuda'): running_var stays on cpu"


@pytest.fixture
def cuda_ctx(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(device_probes, "cuda_unavailable", lambda ctx: "")
    return context(nn.BatchNorm1d)


def measured_transfers(ctx, cpu: list[str], cuda: list[str]) -> None:
    measured(ctx, device_probes.dtype_transfer, value=device_probes.Transfer(cpu, [".half()"]))
    measured(ctx, device_probes.cuda_transfer, value=device_probes.Transfer(cuda, [".to('cuda')"]))


def measured_parity(ctx, ratio: float) -> None:
    for dtype in (torch.float32, torch.float64):
        parity = device_probes.Parity({"train output": ratio}, {"train output": ratio * 1e-6},
                                      {"train output": 1e-6})
        measured(ctx, device_probes.cuda_parity, dtype, value=parity)


@pytest.mark.parametrize(("count", "suffix"), [(1, ""), (2, " (and 1 more)"), (3, " (and 2 more)")],
                         ids=["one", "two", "three"])
def test_a_transfer_failure_names_the_first_problem_and_counts_the_rest(cuda_ctx, count: int, suffix: str) -> None:
    problems = [f"{CPU_PROBLEM} #{i}" for i in range(count)]
    measured_transfers(cuda_ctx, problems, [])
    verdict = device_checks.device_transfer(cuda_ctx)
    assert verdict.status == "failed"
    assert verdict.message == f"State or forward does not follow a conversion: {problems[0]}{suffix}"
    assert verdict.details["problems"] == problems


def test_a_transfer_failure_only_on_cuda_shows_a_cuda_repro_on_the_cuda_device(cuda_ctx) -> None:
    measured_transfers(cuda_ctx, [], [CUDA_PROBLEM])
    verdict = device_checks.device_transfer(cuda_ctx)
    assert verdict.status == "failed"
    assert verdict.device == "cuda"
    assert ".to('cuda')" in verdict.repro and ".half()" not in verdict.repro


def test_a_transfer_failure_on_the_cpu_too_shows_the_cpu_repro_that_any_machine_can_run(cuda_ctx) -> None:
    measured_transfers(cuda_ctx, [CPU_PROBLEM], [CUDA_PROBLEM])
    verdict = device_checks.device_transfer(cuda_ctx)
    assert verdict.status == "failed"
    assert verdict.device is None
    assert ".half()" in verdict.repro and "cuda" not in verdict.repro
    assert verdict.observed == f"{CPU_PROBLEM}; {CUDA_PROBLEM}"


def test_transfers_that_follow_every_conversion_pass_with_the_cuda_part_checked(cuda_ctx) -> None:
    measured_transfers(cuda_ctx, [], [])
    verdict = device_checks.device_transfer(cuda_ctx)
    assert verdict.status == "passed"
    assert verdict.measurements == {"conversions": [".half()", ".to('cuda')"], "cuda": "checked"}


@pytest.mark.parametrize(("ratio", "status"), [(0.5, "passed"), (1.0, "passed"), (1.0001, "failed"),
                                               (float("nan"), "failed")])
def test_cuda_parity_passes_up_to_the_allowed_error_inclusive(cuda_ctx, ratio: float, status: str) -> None:
    measured_parity(cuda_ctx, ratio)
    verdict = device_checks.device_parity(cuda_ctx)
    assert verdict.status == status, verdict
    assert set(verdict.measurements) == {"float32 train output", "float64 train output"}


def test_a_cuda_parity_failure_lists_what_differs_in_every_dtype(cuda_ctx) -> None:
    measured_parity(cuda_ctx, 3.0)
    verdict = device_checks.device_parity(cuda_ctx)
    assert verdict.status == "failed"
    assert verdict.device == "cuda"
    wrong = ["float32 train output: error 3e-06 > allowed 1e-06", "float64 train output: error 3e-06 > allowed 1e-06"]
    assert verdict.message == "On CUDA the module differs from the float64 CPU reference: " + "; ".join(wrong)
    assert verdict.observed == "; ".join(wrong)


def test_a_cuda_parity_failure_message_names_at_most_four_quantities(cuda_ctx) -> None:
    names = [f"q{i}" for i in range(3)]
    for dtype in (torch.float32, torch.float64):
        parity = device_probes.Parity(dict.fromkeys(names, 2.0), dict.fromkeys(names, 2.0), dict.fromkeys(names, 1.0))
        measured(cuda_ctx, device_probes.cuda_parity, dtype, value=parity)
    verdict = device_checks.device_parity(cuda_ctx)
    assert verdict.message.count("error 2 > allowed 1") == 4
    assert verdict.observed.count("error 2 > allowed 1") == 6


def test_without_cuda_device_parity_is_skipped_with_the_reason() -> None:
    ctx = context(nn.BatchNorm1d)
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the skip is for machines without one")
    verdict = device_checks.device_parity(ctx)
    assert verdict.status == "skipped"
    assert verdict.reason == device_probes.NO_CUDA
