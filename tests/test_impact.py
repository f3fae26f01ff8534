"""A finding's impact is its own deviation's cost, replayed in the spec's reference."""

from __future__ import annotations

import pytest

from bnconform.api import run_check


def impact(result: dict, code: str) -> dict:
    return next(f for f in result["findings"] if f["code"] == code)["details"]


@pytest.mark.parametrize(("target", "code", "low", "high", "where"), [
    ("tests.corpus.momentum_default:BatchNorm", "momentum-default", 0.3, 2.0, "eval outputs"),
    ("tests.corpus.eps_default:BatchNorm", "eps-default", 1e-4, 1e-2, "training outputs"),
    ("tests.wild.stats:PerSampleBatchNorm", "reduction-axes", 0.5, 5.0, "training outputs"),
    ("tests.corpus.running_var_estimator:BatchNorm", "running-var-estimator", 1e-3, 0.05, "eval outputs"),
])
def test_impact_is_the_deviations_own(target: str, code: str, low: float, high: float, where: str) -> None:
    details = impact(run_check(target), code)
    assert low < details["impact"] < high
    assert where in details["impact_text"]


def test_the_costliest_error_comes_first() -> None:
    findings = run_check("bnconform.examples.tutorial:BatchNorm")["findings"]
    assert findings[0]["code"] == "momentum-inverted"


def test_findings_without_a_modelled_deviation_claim_no_impact() -> None:
    details = impact(run_check("tests.corpus.input_rank_unsupported:BatchNorm"), "input-rank-unsupported")
    assert "impact" not in details
