"""The speed benchmark of a full check, under pytest-benchmark.

Asserts behaviour only (the result passes), never a timing: addopts has
--benchmark-disable, so a normal test run calls the check once; run
`pytest tests/test_benchmark.py --benchmark-enable` to time it. The wall-time comparison
with `python -c "import torch"` is benchmarks/bench_check.py.
"""

from __future__ import annotations

from bnconform.api import run_check


def test_full_check_of_torch_batchnorm2d(benchmark):
    run_check("torch.nn:BatchNorm2d")  # warm: imports and first-call set-up are not the check
    result = benchmark.pedantic(run_check, args=("torch.nn:BatchNorm2d",), rounds=3, iterations=1)
    assert result["summary"]["verdict"] == "pass"
    assert result["findings"] == []
    counts = result["summary"]["counts"]
    assert counts["failed"] == counts["blocked"] == counts["errored"] == 0
