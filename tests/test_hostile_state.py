"""State that turns hostile between calls (None, meta, empty, resized, a tensor subclass) is a
finding or an honest skip, never bnconform's own error, and never blamed on the wrong cause."""

from __future__ import annotations

from typing import Any

import pytest

from bnconform.api import run_check

HOSTILE = "tests.fixtures.hostile_state"
MOMENTUM = ("momentum-inverted", "momentum-ignored", "momentum-default", "momentum-none")


def run(name: str) -> dict[str, Any]:
    result = run_check(f"{HOSTILE}:{name}")  # a crash in our own code raises here (exit 3 in the CLI)
    errored = {c["id"]: c.get("reason") for c in result["checks"] if c["status"] == "errored"}
    assert result["summary"]["counts"]["errored"] == 0, errored
    assert result["summary"]["exit_code"] == 1
    return result


def check(result: dict[str, Any], code: str) -> dict[str, Any]:
    return next(c for c in result["checks"] if c["id"] == code)


def finding(result: dict[str, Any], code: str) -> dict[str, Any]:
    return next(f for f in result["findings"] if f["code"] == code)


@pytest.mark.parametrize("name", ["RunningMeanNone2d", "RunningVarMeta2d", "RunningVarEmpty2d",
                                  "RunningMeanSubclass2d"])
def test_running_statistics_unreadable_after_one_step(name: str) -> None:
    result = run(name)
    role = "running_mean" if "Mean" in name else "running_var"
    assert f"{role} differs" in finding(result, "sequence-mismatch")["message"]
    # Not "the running statistics do not move": they could not be read.
    for code in (*MOMENTUM, "running-stats-not-updated", "running-var-estimator"):
        assert check(result, code)["status"] == "skipped", code
        assert "read" in check(result, code)["reason"], code
    # The forward is torch's at every precision: no dtype finding comes from our own fallback.
    for f in result["findings"]:
        assert "Error" not in f["message"] or f["code"] in ("state-dict", "sequence-mismatch", "device-transfer")
    dtype = [f for f in result["findings"] if f["code"] == "dtype-support"]
    assert all("break" not in f["message"] for f in dtype)


def test_a_statistic_gone_after_a_step_is_a_shape_finding() -> None:
    shape = finding(run("RunningMeanNone2d"), "running-stats-shape")
    assert "running_mean: (5,) at init, no tensor after a rank-4 step" in shape["observed"]


def test_a_tensor_subclass_statistic_is_never_operated_on() -> None:
    shape = finding(run("RunningMeanSubclass2d"), "running-stats-shape")
    assert "a Refuses (tensor subclass) after a rank-4 step" in shape["observed"]


def test_an_emptied_statistic_is_compared_as_empty() -> None:
    result = run("RunningVarEmpty2d")
    assert "implementation []" in finding(result, "sequence-mismatch")["message"]
    for code in ("non-contiguous", "memory-format"):
        assert check(result, code)["status"] == "passed", code  # same empty tensor for every layout


@pytest.mark.parametrize("name", ["WeightNone2d", "WeightMeta2d", "BiasGrows2d"])
def test_affine_parameters_replaced_after_a_step(name: str) -> None:
    """The forward is torch's with the parameters it was given: outputs and gradients match."""
    result = run(name)
    for code in ("output-mismatch", "grad-mismatch", "affine-ignored"):
        status = [c["status"] for c in result["checks"] if c["id"] == code]
        assert status in ([], ["passed"]), (code, status)
    assert {f["code"] for f in result["findings"]} == {"state-dict", "sequence-mismatch"}
