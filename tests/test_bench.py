"""bnconform.bench units: the bytes model, ceilings, shapes, compare/threshold, tables, memory.

Tiny shapes only; nothing here asserts a duration (timings are reported, never asserted).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from bnconform.bench import bandwidth, compare, shapes
from bnconform.bench.bandwidth import Ceiling, bytes_moved, cuda_ceiling
from bnconform.bench.cases import keeps_history, pass_callable
from bnconform.bench.conform import quick_check
from bnconform.bench.memory import LiveTensors, growth, peak_bytes
from bnconform.bench.results import Memory, Report, Timing
from bnconform.bench.table import html_page, markdown, md_escape, terminal
from bnconform.construct import Builder
from bnconform.errors import UsageError
from bnconform.target import load_target
from tests.corpus.running_stats_grad import BatchNorm as LeakyBatchNorm

# -- bytes model and ceilings ----------------------------------------------------------------


@pytest.mark.parametrize(("pass_name", "factor"), [("eval", 2), ("forward", 3), ("forward+backward", 8)])
def test_bytes_model_counts_input_sized_reads_and_writes(pass_name: str, factor: int) -> None:
    shape = (4, 3, 5, 7)
    assert bytes_moved(pass_name, shape, 4) == factor * 4 * 3 * 5 * 7 * 4
    assert bytes_moved(pass_name, shape, 2) == factor * 4 * 3 * 5 * 7 * 2  # float16 moves half


def test_gbps_and_fraction() -> None:
    assert bandwidth.gbps(3_000_000_000, 1.5) == pytest.approx(2.0)
    assert bandwidth.fraction(5.0, Ceiling(20.0, "x")) == pytest.approx(0.25)
    assert bandwidth.fraction(5.0, Ceiling(0.0, "unknown")) is None


def test_cuda_ceiling_from_device_properties() -> None:
    props = SimpleNamespace(name="NVIDIA H100 80GB HBM3", memory_clock_rate=2_619_000, memory_bus_width=5120)
    limit = cuda_ceiling(props)
    assert limit.gbps == pytest.approx(2 * 2.619e9 * 5120 / 8 / 1e9)
    assert "device properties" in limit.source


@pytest.mark.parametrize(("name", "expected"), [("NVIDIA H200", 4800.0), ("NVIDIA GH200 480GB", 4000.0),
                                                ("Tesla T4", 320.0), ("NVIDIA A100-SXM4-40GB", 1555.0),
                                                ("NVIDIA L4", 300.0), ("NVIDIA L40S", 864.0)])
def test_cuda_ceiling_falls_back_to_the_table(name: str, expected: float) -> None:
    limit = cuda_ceiling(SimpleNamespace(name=name, memory_clock_rate=0, memory_bus_width=0))
    assert limit.gbps == expected
    assert "table" in limit.source


def test_unknown_gpu_has_no_ceiling_and_no_fraction() -> None:
    limit = cuda_ceiling(SimpleNamespace(name="Mystery GPU"))
    assert limit.gbps == 0.0
    assert "unknown" in limit.source


def test_cpu_copy_ceiling_is_measured_once_per_thread_count() -> None:
    first = bandwidth.ceiling("cpu")
    assert first.gbps > 0
    assert "measured" in first.source
    assert bandwidth.ceiling("cpu") is first


# -- shapes ----------------------------------------------------------------------------------


def test_parse_shape_accepts_commas_and_x() -> None:
    assert shapes.parse_shape("8,4,6,6") == (8, 4, 6, 6)
    assert shapes.parse_shape("8x4") == (8, 4)


@pytest.mark.parametrize("text", ["8,a,6,6", "8", "1,2,3,4,5,6", "0,4,6,6", "1,4"])
def test_parse_shape_refuses_bad_shapes(text: str) -> None:
    with pytest.raises(UsageError, match="--shapes"):
        shapes.parse_shape(text)


def test_full_shapes_halve_the_batch_to_fit_memory() -> None:
    fitted = shapes.fit_to_memory(((256, 64, 56, 56),), budget_bytes=8 * 4 * 64 * 56 * 56 * 32, element_size=4)
    assert fitted == [(32, 64, 56, 56)]
    assert shapes.fit_to_memory(((256, 64, 56, 56),), budget_bytes=1, element_size=4) == [(2, 64, 56, 56)]


def test_torch_class_matches_rank() -> None:
    assert [shapes.torch_class(r).__name__ for r in (2, 3, 4, 5)] == [
        "BatchNorm1d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


# -- compare and threshold -------------------------------------------------------------------


def run_json(target_s: float, torch_s: float, shape: tuple[int, ...] = (8, 4, 6, 6)) -> dict:
    def bench(role: str, median: float) -> dict:
        info = {"role": role, "pass": "forward", "shape": list(shape), "dtype": "float32", "device": "cpu"}
        return {"name": f"test[{role}]", "extra_info": info, "stats": {"median": median}}

    return {"benchmarks": [bench("target", target_s), bench("torch", torch_s)]}


@pytest.mark.parametrize(("text", "value"), [("10%", 0.10), ("10", 0.10), (" 2.5 % ", 0.025), ("0%", 0.0)])
def test_threshold_parses_percentages(text: str, value: float) -> None:
    assert compare.parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["ten", "-5%", "nan", "inf%", ""])
def test_threshold_refuses_non_percentages(text: str) -> None:
    with pytest.raises(UsageError, match="--fail-if-slower"):
        compare.parse_threshold(text)


def test_target_slower_than_threshold_is_a_regression() -> None:
    changes = compare.compare(run_json(1.0, 1.0), run_json(1.2, 1.0))
    target = next(c for c in changes if c.role == "target")
    assert target.change == pytest.approx(0.2)
    assert compare.regressions(changes, 0.10) == [target]
    assert compare.regressions(changes, 0.25) == []


def test_repeats_keep_the_lower_median() -> None:
    run = run_json(1.0, 1.0)
    run["benchmarks"] += [{**b, "stats": {"median": 0.5}} for b in run_json(1.0, 1.0)["benchmarks"]]
    assert set(compare.medians(run).values()) == {0.5}


def test_only_the_target_decides() -> None:
    changes = compare.compare(run_json(1.0, 1.0), run_json(1.05, 3.0))  # torch 3x slower: the machine
    assert compare.regressions(changes, 0.10) == []


def test_baseline_without_matching_results_is_usage_error() -> None:
    with pytest.raises(UsageError, match="no result"):
        compare.compare(run_json(1.0, 1.0, (2, 3)), run_json(1.0, 1.0))


def test_load_baseline_refuses_missing_and_malformed_files(tmp_path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        compare.load_baseline(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(UsageError, match="not a pytest-benchmark JSON"):
        compare.load_baseline(str(bad))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"benchmarks": [{"name": "x", "stats": {"median": 1}}]}), encoding="utf-8")
    with pytest.raises(UsageError, match="no bnconform bench results"):
        compare.load_baseline(str(other))


# -- tables ----------------------------------------------------------------------------------

HOSTILE = "evil.mod:<script>alert(1)</script>|x"


def report(conforms: bool = True, target: str = "torch.nn:BatchNorm2d") -> Report:
    from bnconform.bench.conform import Conformance

    rep = Report(target=target, reference="torch.nn:BatchNorm2d", device="cpu", dtype="float32", threads=1,
                 ceiling=Ceiling(10.0, "CPU copy"),
                 conformance=Conformance(conforms, "ok" if conforms else "eval forward <b>differs</b>"),
                 memory_method="live tensors")
    rep.timings = [Timing((8, 4, 6, 6), "forward", 3_000_000, 0.002, 0.001, 10.0),
                   Timing((8, 4, 6, 6), "eval", 2_000_000, 0.001, 0.001, 10.0, 0.0009, 0.0003)]
    rep.memory = [Memory((8, 4, 6, 6), 4_000_000, 1_000_000)]
    return rep


def test_terminal_table_shows_ratio_bandwidth_and_fraction() -> None:
    text = terminal(report())
    row = next(line for line in text.splitlines() if line.startswith("8x4x6x6  forward"))
    # 3 MB in 2 ms = 1.5 GB/s = 15% of 10 GB/s; torch 3.0 GB/s = 30%
    assert row.split() == ["8x4x6x6", "forward", "2.000", "1.000", "2.00x", "n/a", "1.5", "15%", "3.0", "30%", "yes"]
    assert "4.00x" in text  # peak memory ratio
    eval_row = next(line for line in text.splitlines() if line.startswith("8x4x6x6  eval"))
    assert eval_row.split()[4:6] == ["1.00x", "3.00x"]  # medians equal, fastest rounds 3x apart
    assert "WARNING" not in text
    assert "slowdown: target/torch 1.41x" in text  # geometric mean of 2.00x and 1.00x


def test_non_conforming_target_is_flagged_in_the_table() -> None:
    text = terminal(report(conforms=False))
    assert text.splitlines()[2].split()[-1] == "NO"
    assert "WARNING: the target does not conform" in text


def test_markdown_escapes_user_text() -> None:
    text = markdown(report(conforms=False, target=HOSTILE))
    assert "<script>" not in text and "<b>" not in text
    assert md_escape("a|b<c>") == r"a\|b\<c\>"
    assert "\\|x" in text  # a pipe in the target name cannot split a table cell


def test_html_escapes_user_text() -> None:
    page = html_page(report(conforms=False, target=HOSTILE))
    assert "<script>" not in page and "<b>differs" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<table>") == 2


# -- memory ----------------------------------------------------------------------------------


def test_live_tensors_sees_allocations_and_frees() -> None:
    with LiveTensors() as live:
        a = torch.ones(1000)
        b = torch.ones(500)
        del a
        c = b + 1
        live.refresh()
    assert live.peak == 1500 * 4  # a and b; a was dead by the time b + 1 allocated c
    assert live.live == 1000 * 4  # b and c
    del b, c


def test_peak_of_forward_backward_counts_output_and_input_gradient() -> None:
    module = torch.nn.BatchNorm2d(4)
    x = torch.randn(8, 4, 6, 6, requires_grad=True)
    dy = torch.randn(8, 4, 6, 6)
    peak = peak_bytes(lambda: torch.autograd.grad(module(x), [x, *module.parameters()], dy), "cpu")
    assert peak >= 2 * x.nbytes  # y and dx are alive together at the end of backward
    assert peak < 4 * x.nbytes


def test_growth_is_detected_for_running_stats_with_history_and_zero_for_torch() -> None:
    make = lambda: torch.randn(8, 4, 6, 6)  # noqa: E731
    leaky = growth(LeakyBatchNorm(4), make, "cpu", steps=20)
    clean = growth(torch.nn.BatchNorm2d(4), make, "cpu", steps=20)
    assert leaky.bytes_per_step >= make().nbytes  # each step's batch stays reachable from a buffer
    assert clean.bytes_per_step < 64
    assert leaky.steps == 20 and leaky.shape == (8, 4, 6, 6)


def test_guarded_call_cuts_buffer_history_so_timing_cannot_leak() -> None:
    module = LeakyBatchNorm(4)
    x = torch.randn(8, 4, 6, 6, requires_grad=True)
    assert keeps_history(module, x)
    assert not keeps_history(torch.nn.BatchNorm2d(4), x)
    call = pass_callable(module, "forward", x, torch.randn(8, 4, 6, 6), cut_history=True)
    for _ in range(3):
        call()
    assert all(b.grad_fn is None for b in module.buffers())


# -- the quick forward check -----------------------------------------------------------------


@pytest.mark.parametrize(("target", "conforms"), [
    ("torch.nn:BatchNorm2d", True),
    ("tests.corpus.reference:BatchNorm", True),
    ("bnconform.examples.tutorial:BatchNorm", False),  # momentum 0.9: eval after one step differs
    ("tests.corpus.output_mismatch:BatchNorm", False),
])
def test_quick_check(target: str, conforms: bool) -> None:
    result = quick_check(Builder(load_target(target)), (8, 4, 6, 6), "cpu")
    assert result.conforms is conforms, result.detail


# -- the CUDA path, driven on the CPU with torch.cuda's functions replaced -------------------
# These check bnconform's arithmetic and the order of calls; the real CUDA run is
# test_bench_cli.py::test_cuda_run_synchronizes_and_uses_the_device_ceiling (marked cuda).


def test_synced_calls_cuda_synchronize_after_each_call(monkeypatch) -> None:
    from bnconform.bench.cases import synced

    events: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: events.append("sync"))
    call = synced(lambda: events.append("kernel"), "cuda")
    call()
    call()
    assert events == ["kernel", "sync", "kernel", "sync"]
    events.clear()
    synced(lambda: events.append("kernel"), "cpu")()
    assert events == ["kernel"]


class FakeAllocator:
    """torch.cuda's memory counters for a run that allocates `extra` bytes above `base`."""

    def __init__(self, base: int, extra: int) -> None:
        self.base, self.extra, self.reset = base, extra, False

    def install(self, monkeypatch) -> None:
        monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
        monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a: setattr(self, "reset", True))
        monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: self.base)
        monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: self.base + self.extra)


def test_cuda_peak_is_max_allocated_above_what_was_allocated_before(monkeypatch) -> None:
    fake = FakeAllocator(base=1000, extra=4096)
    fake.install(monkeypatch)
    assert peak_bytes(lambda: None, "cuda") == 4096
    assert fake.reset  # the peak counter starts at this pass, not at the process's start


def test_cuda_growth_is_allocated_after_minus_before_per_step(monkeypatch) -> None:
    allocated = iter([10_000, 10_000 + 50 * 256])
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: next(allocated))
    result = growth(torch.nn.BatchNorm2d(4), lambda: torch.randn(8, 4, 6, 6), "cuda", steps=50)
    assert result.bytes_per_step == 256


def test_cuda_ceiling_reads_the_current_device(monkeypatch) -> None:
    props = SimpleNamespace(name="NVIDIA A100-SXM4-80GB", memory_clock_rate=1_593_000, memory_bus_width=5120)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: props)
    assert bandwidth.ceiling("cuda").gbps == pytest.approx(2 * 1.593e9 * 640 / 1e9)


def test_full_shapes_on_cuda_fit_half_the_free_memory(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (10 << 30, 80 << 30))
    chosen = shapes.select_shapes(None, True, "cuda", 4)
    per_shape = (5 << 30) // len(shapes.FULL_SHAPES)  # half the free memory, shared by the shapes
    assert all(shapes.WORKING_SET_FACTOR * 4 * shapes.prod(s) <= per_shape or s[0] == 2 for s in chosen)
    assert chosen[0] == (128, 64, 56, 56)  # 8 x 4 B x 256x64x56x56 = 1.5 GiB > 1 GiB; halved once: 0.77 GiB
    assert all(len(s) == 4 for s in chosen)
