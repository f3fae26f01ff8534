"""Realistic user code, not one-bug corpus classes: the diagnosis names each real mistake."""

from __future__ import annotations

import pytest

from bnconform.api import run_check


def codes(result: dict, severity: str | None = None) -> set[str]:
    return {f["code"] for f in result["findings"] if severity is None or f["severity"] == severity}


def test_d2l_style_batchnorm_gets_the_right_diagnosis() -> None:
    result = run_check("tests/fixtures/d2l_style_bn.py:BatchNorm")
    assert result["target"]["parameters"]["rank"] == "num_dims"  # rank selector recognised
    roots = {f["code"] for f in result["findings"] if f["severity"] == "error" and not f["caused_by"]}
    assert roots == {
        "running-stats-not-buffers",  # plain attributes
        "running-stats-shape",  # (1, C, 1, 1)
        "mode-follows-grad",  # torch.is_grad_enabled() instead of self.training
        "dtype-support",  # ((X - mean) ** 2) in float16 overflows at std 100, where torch does not
    }
    follows = {f["code"]: f["caused_by"] for f in result["findings"] if f["caused_by"]}
    assert follows["eval-updates-running-stats"] == "mode-follows-grad"
    # only (N, C) and (N, C, H, W): rank 3 raises, loudly, so a warning
    assert {"running-var-estimator", "batch-size-one", "input-rank-unsupported"} <= codes(result, "warning")
    # 0.9 as the weight of the OLD value is PyTorch's 0.1: the default update is right.
    assert "momentum-inverted" not in codes(result)
    assert result["fingerprint"]["closest_spec"]["name"] == "mxnet"


def test_bundled_tutorial_names_its_four_mistakes() -> None:
    result = run_check("bnconform.examples.tutorial:BatchNorm")
    assert result["summary"]["exit_code"] == 1
    assert {"momentum-inverted", "running-stats-shape", "dtype-support"} <= codes(result, "error")
    assert "input-rank-unsupported" in codes(result, "warning")
    assert "running-var-estimator" in codes(result)
    momentum = next(f for f in result["findings"] if f["code"] == "momentum-inverted")
    assert "0.9" in momentum["observed"] and "0.1" in momentum["expected"]
    trace = result["plots"]["running_stats_trace"]
    assert len(trace["steps"]) == 21 and trace["implementation"]["mean"] != trace["spec"]["mean"]


def test_values_pinned_with_init_are_the_users_choice_not_defects() -> None:
    wide = run_check("torch.nn:BatchNorm2d", init={"num_features": 8})
    assert wide["summary"]["verdict"] == "pass" and not codes(wide)
    assert "num_features=8" in wide["target"]["construction"]
    for momentum in (0.5, 0.9, None):  # 0.9 would be "inverted" were it the class default
        pinned = run_check("torch.nn:BatchNorm2d", init={"momentum": momentum})
        assert not codes(pinned, "error") and not codes(pinned, "warning"), pinned["findings"]
        status = {c["id"]: c["status"] for c in pinned["checks"]}
        assert status["momentum-default"] == "skipped" and status["momentum-inverted"] == "passed"


@pytest.mark.parametrize("name", ["LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "SyncBatchNorm"])
def test_torchs_other_batchnorm_classes_are_clean(name: str) -> None:
    """Lazy modules learn their width from the first input and need no glue code."""
    result = run_check(f"torch.nn:{name}")
    assert not codes(result, "error") and not codes(result, "warning"), result["findings"]


def test_eps_placement_is_found_without_an_eps_argument() -> None:
    result = run_check("tests/fixtures/no_eps_arg_bn.py:BatchNorm")
    status = {c["id"]: c["status"] for c in result["checks"]}
    assert status["eps-placement"] == "failed" and status["eps-ignored"] == "skipped"
    assert "errored" not in status.values()
    finding = next(f for f in result["findings"] if f["code"] == "eps-placement")
    assert "BatchNorm(num_features=5)" in finding["repro"]  # built as the class allows: no eps=
