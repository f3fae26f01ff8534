"""`bnconform bench` from the command line: bad input, an end-to-end run, the regression gate.

The end-to-end runs use one tiny shape and pytest-benchmark's quick rounds; they assert what
the run reports and writes, never how long anything took.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bnconform.cli import main

TINY = ["--shapes", "8,4,6,6", "--quick"]


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("bnconform: error:") and "Traceback" not in err
    return err


@pytest.mark.parametrize(("argv", "fragment"), [
    (["no.such.module:BatchNorm"], "no.such.module"),
    (["torch.nn:BatchNorm2d", "--shapes", "8,x,6,6"], "--shapes"),
    (["torch.nn:BatchNorm2d", "--shapes", "8"], "--shapes"),
    (["torch.nn:BatchNorm2d", "--fail-if-slower", "10%"], "--fail-if-slower needs --compare"),
    (["torch.nn:BatchNorm2d", "--compare", "missing.json"], "no such file"),
    (["torch.nn:BatchNorm2d", "--compare", "missing.json", "--fail-if-slower", "lots"], "--fail-if-slower"),
    (["torch.nn:BatchNorm2d", "--format", "pdf"], "--format pdf"),
    (["torch.nn:BatchNorm2d", "--threads", "-1"], "--threads"),
    (["torch.nn:BatchNorm2d", "--dtype", "int8"], "--dtype"),
    (["torch.nn:BatchNorm2d", "--quick", "--full"], "not allowed with"),
    (["torch.nn:BatchNorm2d", "--save", "../x"], "--save"),
    (["bnconform.examples.tutorial:BatchNorm", "--shapes", "8,4,6"], "rank it supports"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], fragment: str, capsys, tmp_path) -> None:
    assert main(["bench", *argv, "--output", str(tmp_path)]) == 2
    assert fragment in one_error_line(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_without_a_device_is_refused(capsys, tmp_path) -> None:
    assert main(["bench", "torch.nn:BatchNorm2d", "--device", "cuda", "--output", str(tmp_path)]) == 2
    assert "no CUDA device" in one_error_line(capsys)


def test_end_to_end_torch_against_itself(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTEST_ADDOPTS", "--benchmark-skip")  # the caller's pytest settings do not leak in
    code = main(["bench", "torch.nn:BatchNorm2d", *TINY, "--output", "out", "--format", "md,html", "--save", "first"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    rows = [line.split() for line in printed.splitlines() if line.startswith("8x4x6x6  ")]
    assert [r[1] for r in rows[:3]] == ["forward", "forward+backward", "eval"]
    assert all(r[-1] == "yes" and r[4].endswith("x") for r in rows[:3])  # conforms; a ratio per pass
    assert "bandwidth ceiling" in printed and "MB per training step" in printed

    data = json.loads((tmp_path / "out" / "bnconform-bench.json").read_text(encoding="utf-8"))
    infos = [b["extra_info"] for b in data["benchmarks"]]
    assert sorted((i["pass"], i["role"], i["repeat"]) for i in infos) == sorted(
        (p, r, n) for p in ("forward", "forward+backward", "eval") for r in ("target", "torch") for n in "ab")
    assert all(b["stats"]["median"] > 0 and b["stats"]["rounds"] >= 5 for b in data["benchmarks"])
    assert data["bnconform"]["conformance"]["conforms"] is True
    assert data["bnconform"]["growth"]["torch"]["bytes_per_step"] < 64
    saved = list(tmp_path.glob(".benchmarks/*/0001_first.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["bnconform"]["target"] == "torch.nn:BatchNorm2d"
    assert (tmp_path / "out" / "bnconform-bench.md").read_text().startswith("## Benchmark: torch.nn:BatchNorm2d")
    assert "<table>" in (tmp_path / "out" / "bnconform-bench.html").read_text()


def scaled_baseline(source: Path, dest: Path, factor: float) -> Path:
    """A copy of a run whose target medians are multiplied by `factor` (faking another commit)."""
    data = json.loads(source.read_text(encoding="utf-8"))
    for bench in data["benchmarks"]:
        if bench["extra_info"]["role"] == "target":
            bench["stats"]["median"] *= factor
    dest.write_text(json.dumps(data), encoding="utf-8")
    return dest


def test_compare_fails_only_when_the_target_got_slower(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "torch.nn:BatchNorm2d", *TINY, "--output", "base"]) == 0
    run = tmp_path / "base" / "bnconform-bench.json"
    capsys.readouterr()

    fast_baseline = scaled_baseline(run, tmp_path / "fast.json", 0.25)  # now 4x slower than that
    code = main(["bench", "torch.nn:BatchNorm2d", *TINY, "--output", "again",
                 "--compare", str(fast_baseline), "--fail-if-slower", "10%"])
    printed = capsys.readouterr().out
    assert code == 1, printed
    assert "SLOWER than the baseline by more than 10%" in printed

    slow_baseline = scaled_baseline(run, tmp_path / "slow.json", 100.0)  # now far faster than that
    code = main(["bench", "torch.nn:BatchNorm2d", *TINY, "--output", "again",
                 "--compare", str(slow_baseline), "--fail-if-slower", "10%"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "no target benchmark slower than the baseline" in printed
    assert "against the baseline" in printed


def test_leaking_running_stats_show_growth_and_a_tutorial_its_nonconformance(tmp_path, capsys) -> None:
    leaky = str(Path(__file__).parent / "corpus" / "running_stats_grad.py") + ":BatchNorm"
    assert main(["bench", leaky, *TINY, "--output", str(tmp_path), "--fail-if-nonconforming"]) == 0
    data = json.loads((tmp_path / "bnconform-bench.json").read_text(encoding="utf-8"))
    assert data["bnconform"]["growth"]["target"]["bytes_per_step"] >= 8 * 4 * 6 * 6 * 4
    assert data["bnconform"]["growth"]["torch"]["bytes_per_step"] < 64

    capsys.readouterr()
    code = main(["bench", "bnconform.examples.tutorial:BatchNorm", *TINY, "--output", str(tmp_path),
                 "--fail-if-nonconforming"])
    captured = capsys.readouterr()
    assert code == 1
    assert "does not conform" in captured.err
    assert "WARNING: the target does not conform" in captured.out


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_synchronizes_and_uses_the_device_ceiling(tmp_path, capsys) -> None:
    assert main(["bench", "torch.nn:BatchNorm2d", *TINY, "--device", "cuda", "--output", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "bnconform-bench.json").read_text(encoding="utf-8"))
    assert data["bnconform"]["ceiling"]["gbps"] > 100
    assert "CPU" not in data["bnconform"]["ceiling"]["source"]
    assert {b["extra_info"]["device"] for b in data["benchmarks"]} == {"cuda"}
    assert all(m["torch_bytes"] > 0 for m in data["bnconform"]["memory"])


def test_baseline_of_other_shapes_is_refused_before_timing(tmp_path, capsys) -> None:
    baseline = tmp_path / "other.json"
    info = {"role": "target", "pass": "forward", "shape": [2, 3], "dtype": "float32", "device": "cpu"}
    baseline.write_text(json.dumps({"benchmarks": [{"extra_info": info, "stats": {"median": 1.0}}]}))
    assert main(["bench", "torch.nn:BatchNorm2d", *TINY, "--output", str(tmp_path / "out"),
                 "--compare", str(baseline)]) == 2
    assert "no result for this run" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()  # refused before anything ran or was written


def test_missing_pytest_benchmark_is_one_line_with_the_install_hint(monkeypatch, capsys, tmp_path) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pytest_benchmark"
                        else real(name, *a))
    assert main(["bench", "torch.nn:BatchNorm2d", "--output", str(tmp_path)]) == 2
    assert "pip install pytest pytest-benchmark" in one_error_line(capsys)
