"""The pytest module that `bnconform bench` hands to pytest-benchmark (see timing.py).

Its only test is parametrized by timing.CasesPlugin with the run's cases; run it through
`bnconform bench`, not directly (it has no cases of its own).
"""

from __future__ import annotations

from bnconform.bench.shapes import shape_text


def test_batchnorm(benchmark, bench_case):  # noqa: ANN001 - pytest fixtures
    benchmark.group = f"{bench_case.pass_name} {shape_text(bench_case.shape)}"
    benchmark.extra_info.update(bench_case.info)
    benchmark(bench_case.call)
