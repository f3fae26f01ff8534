"""`infer` writes the observed behaviour as a spec the same implementation passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bnconform.api import run_check
from bnconform.infer import infer
from bnconform.spec import load_spec

KERAS = str(Path(__file__).parent / "corpus" / "keras_reference.py") + ":BatchNorm"
ROOT = Path(__file__).parent.parent
SAMPLE_LAYERS = Path(__file__).parent / "sample_project" / "tinynet" / "layers.py"
TUTORIAL = ROOT / "bnconform" / "examples" / "tutorial.py"


def round_trip(target: str, tmp_path: Path) -> tuple[dict, dict]:
    text, _ = infer(target)
    path = tmp_path / "inferred.toml"
    path.write_text(text)
    spec = tomllib.loads(text)
    load_spec(str(path))  # valid: loads with every key checked
    return spec, run_check(target, spec=str(path))


def codes(result: dict) -> set[str]:
    return {f["code"] for f in result["findings"] if not f["waived"]}


def test_torch_batchnorm2d_round_trips_clean(tmp_path: Path) -> None:
    spec, result = round_trip("torch.nn:BatchNorm2d", tmp_path)
    assert spec["layout"]["ranks"] == [4] and spec["running_stats"]["momentum_convention"] == "new-weight"
    assert codes(result) == set()


def test_keras_convention_class_round_trips_clean(tmp_path: Path) -> None:
    spec, result = round_trip(KERAS, tmp_path)
    assert spec["layout"]["channel_axis"] == -1 and spec["normalization"]["eps"] == pytest.approx(1e-3)
    assert spec["running_stats"]["momentum_convention"] == "old-weight"
    assert spec["running_stats"]["momentum_default"] == pytest.approx(0.99)
    assert codes(result) == set()


def test_tutorial_round_trips_to_its_bugs_that_no_convention_explains(tmp_path: Path) -> None:
    spec, result = round_trip("bnconform.examples.tutorial:BatchNorm", tmp_path)
    # Conventions it follows (not bugs): biased running variance, momentum 0.9 weighing the new batch.
    assert spec["running_stats"]["variance"] == "biased"
    assert spec["running_stats"]["momentum_default"] == pytest.approx(0.9)
    # a (1, C) buffer and float16 overflow are bugs under every spec; nothing else remains
    assert codes(result) == {"running-stats-shape", "dtype-support"}


def test_the_layout_is_the_one_observed_even_when_the_closest_spec_has_the_other(tmp_path: Path) -> None:
    """The tutorial is channels first; its other conventions once made a channels-last spec the
    template, and the file described a channels-last class."""
    spec, _ = round_trip("bnconform.examples.tutorial:BatchNorm", tmp_path)
    assert spec["layout"] == {"channel_axis": 1, "ranks": [2, 4], "reduction_axes": {"2": [0], "4": [0, 2, 3]}}


@pytest.mark.parametrize("name", ["BatchNorm2d", "FrozenBatchNorm2d"])
def test_the_sample_projects_layers_round_trip_clean(name: str, tmp_path: Path) -> None:
    spec, result = round_trip(f"{SAMPLE_LAYERS}:{name}", tmp_path)
    assert spec["training"]["uses"] == ("running" if name.startswith("Frozen") else "batch")
    assert codes(result) == set()


def infer_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bnconform", "infer", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def check_cli(config: Path, cwd: Path) -> tuple[int, dict]:
    out = cwd / "reports"
    done = subprocess.run([sys.executable, "-m", "bnconform", "check", "--config", str(config), "--format", "json",
                           "--output", str(out)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return done.returncode, json.loads((out / "bnconform-report.json").read_text())


def test_a_baseline_accepts_the_remaining_bugs_as_waivers_and_reports_them_stale_once_fixed(tmp_path: Path) -> None:
    source = tmp_path / "mybn.py"
    source.write_text(TUTORIAL.read_text())
    done = infer_cli("mybn.py:BatchNorm", "-o", "specs/mybn.toml", "--baseline", "ci/bnconform.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config = tomllib.loads((tmp_path / "ci" / "bnconform.toml").read_text())
    assert config["targets"] == [{"target": "../mybn.py:BatchNorm", "spec": "../specs/mybn.toml"}]
    assert {(w["code"], w["target"]) for w in config["waivers"]} == {
        ("running-stats-shape", "../mybn.py:BatchNorm"), ("dtype-support", "../mybn.py:BatchNorm")}
    assert all(w["reason"].startswith("baseline of ") for w in config["waivers"])

    code, report = check_cli(tmp_path / "ci" / "bnconform.toml", cwd=tmp_path / "ci")
    assert code == 0 and report["summary"]["verdict"] == "pass" and report["summary"]["counts"]["error"] == 0
    assert {f["code"] for f in report["findings"] if f["waived"]} == {"running-stats-shape", "dtype-support"}

    fixed = source.read_text().replace("mean = x.mean(dim=0, keepdim=True)", "mean = x.mean(dim=0)")
    fixed = fixed.replace("var = ((x - mean) ** 2).mean(dim=0, keepdim=True)", "var = ((x - mean) ** 2).mean(dim=0)")
    assert fixed != source.read_text()
    source.write_text(fixed)
    _, report = check_cli(tmp_path / "ci" / "bnconform.toml", cwd=tmp_path / "ci")
    status = {w["code"]: w["status"] for w in report["settings"]["waivers"]}
    assert status == {"running-stats-shape": "stale", "dtype-support": "used"}


def test_a_baseline_needs_the_spec_file_it_refers_to(tmp_path: Path) -> None:
    done = infer_cli("torch.nn:BatchNorm2d", "--baseline", "bnconform.toml", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "bnconform: error: --baseline needs -o SPEC.toml: the baseline refers to the spec file"]
    assert not (tmp_path / "bnconform.toml").exists()


def test_cli_writes_the_file_and_says_what_remains(tmp_path: Path) -> None:
    out = tmp_path / "bn.toml"
    done = subprocess.run([sys.executable, "-m", "bnconform", "infer", "torch.nn:BatchNorm1d", "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert tomllib.loads(out.read_text())["layout"]["ranks"] == [2, 3]
    assert "checked against the inferred spec: clean" in done.stderr
