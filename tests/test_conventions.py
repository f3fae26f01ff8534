"""No false alarms under the other shipped specs: a correct implementation of each
convention comes out clean (no error, no warning) against its own spec, on several seeds."""

from __future__ import annotations

import pytest

from bnconform.api import run_check

CASES = [
    ("tests.fixtures.conventions:OldWeight", "onnx"),
    ("tests.fixtures.conventions:OldWeight", "mxnet"),
    ("tests.fixtures.conventions:OldWeight", "paddle"),
    ("tests.fixtures.conventions:FlaxStyle", "flax"),
    ("tests.corpus.keras_reference:BatchNorm", "keras"),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("target", "spec"), CASES, ids=[f"{t.rsplit(':')[-1]}-{s}" for t, s in CASES])
def test_correct_implementation_is_clean_under_its_spec(target: str, spec: str, seed: int) -> None:
    result = run_check(target, spec=spec, seed=seed)
    loud = [(f["code"], f["message"]) for f in result["findings"] if f["severity"] in ("error", "warning")]
    assert not loud
    closest = result["fingerprint"]["closest_spec"]
    assert (closest["name"], closest["differences"]) == (spec, [])  # ties go to the checked spec


def test_the_same_class_is_diagnosed_under_pytorch() -> None:
    result = run_check("tests.fixtures.conventions:OldWeight", spec="pytorch")
    codes = {f["code"] for f in result["findings"]}
    assert {"momentum-inverted", "running-var-estimator", "batch-size-one"} <= codes
