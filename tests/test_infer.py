"""`infer` writes the observed behaviour as a spec the same implementation passes."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bnconform.api import run_check
from bnconform.infer import infer
from bnconform.spec import load_spec

KERAS = str(Path(__file__).parent / "corpus" / "keras_reference.py") + ":BatchNorm"


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
    assert "momentum-inverted" not in codes(result) and "running-var-estimator" not in codes(result)
    assert "running-stats-shape" in codes(result)  # a (1, C) buffer is a bug under every spec


def test_cli_writes_the_file_and_says_what_remains(tmp_path: Path) -> None:
    out = tmp_path / "bn.toml"
    done = subprocess.run([sys.executable, "-m", "bnconform", "infer", "torch.nn:BatchNorm1d", "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert tomllib.loads(out.read_text())["layout"]["ranks"] == [2, 3]
    assert "checked against the inferred spec: clean" in done.stderr
