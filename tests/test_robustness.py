"""A crash, hang or NaN in user code becomes a finding and the run goes on; runs are deterministic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bnconform.api import run_check
from bnconform.render.markdown import render as markdown
from tests.fixtures.cli import robust

ROBUST = "tests.fixtures.cli.robust"
EVAL_CHECKS = {
    "mode-follows-grad",
    "eval-uses-batch-stats",
    "eval-updates-running-stats",
    "num-batches-tracked",
    "state-dict",
}  # checks that drive an eval-mode forward
MOMENTUM_CHECKS = ("momentum-inverted", "momentum-ignored", "momentum-default")


def statuses(result: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in result["checks"]}


def findings(result: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [f for f in result["findings"] if f["code"] == code]


@pytest.fixture
def release_hung_threads() -> Iterator[None]:
    """Hung forwards run in daemon threads; let them end once the run is over."""
    robust.RELEASE.clear()
    yield
    robust.RELEASE.set()


def test_eval_forward_that_raises_is_a_finding_and_the_run_goes_on():
    result = run_check(f"{ROBUST}:EvalRaises2d")
    failed = findings(result, "forward-failed")
    assert failed
    assert all("RuntimeError: eval path not implemented yet" in f["message"] for f in failed)
    assert all(f["observed"] == "raises" for f in failed)
    # The first report names the eval check that hit the crash; the same crash seen by
    # later checks is reported once, not once per check.
    first = failed[0]["message"]
    assert first.startswith("eval-mode forward raised: RuntimeError: eval path not implemented yet")
    status = statuses(result)
    checking = first.split("(while checking ")[1].rstrip(")")
    assert status[checking] == "failed"
    assert {code for code in EVAL_CHECKS if status[code] == "failed"}  # eval checks see the crash
    assert len({f["message"].split(" (while checking")[0] for f in failed}) == len(failed)
    assert status["forward-failed"] == "passed"  # training works: its own check passes
    for code in MOMENTUM_CHECKS + ("running-var-estimator", "reduction-axes", "output-mismatch"):
        assert status[code] == "passed", code
    assert "errored" not in status.values()
    assert result["summary"]["verdict"] == "fail"
    assert "forward-failed" in markdown(result)  # a report is produced from the result


def test_eval_forward_that_hangs_times_out_and_the_run_completes():
    from bnconform.supervise import run_supervised

    # The supervisor kills the hung worker; the replacement fails the same call fast.
    result = run_supervised(f"{ROBUST}:EvalHangs2d", timeout_s=0.5)
    failed = findings(result, "forward-failed")
    hung = [f["message"].split(" hung:")[0] for f in failed if "no result within" in f["message"]]
    assert hung and len(set(hung)) == len(hung), hung  # each hung call reported once, never waited on twice
    assert all(f["details"]["kind"] == "timeout" for f in failed)
    assert all(f["observed"] == "hangs" for f in failed)
    # A call made inside a guarded block (a probe measured on first use) hands the budget back to
    # the enclosing call: a hang after it is that call's, stopped after its timeout, not after the
    # supervisor's idle limit for bnconform's own code (minutes).
    assert not [f for f in failed if "code that ran after" in f["message"]], hung
    # The hang is the forward's fault: no constructor is blamed for calls skipped after it.
    assert not findings(result, "construct-failed")
    status = statuses(result)
    for code in MOMENTUM_CHECKS + ("running-var-estimator", "reduction-axes"):
        assert status[code] == "passed", code


def test_forward_returning_nan_is_forward_failed():
    result = run_check(f"{ROBUST}:ReturnsNaN2d")
    failed = findings(result, "forward-failed")
    assert len(failed) == 1
    assert failed[0]["observed"] == "NaN/inf" and failed[0]["expected"] == "finite values"
    status = statuses(result)
    assert status["forward-failed"] == "failed"
    blocked = {code for code, s in status.items() if s == "blocked"}
    assert "momentum-inverted" in blocked and "output-mismatch" in blocked
    reasons = {c["reason"] for c in result["checks"] if c["status"] == "blocked"}
    assert reasons == {"blocked by forward-failed"}
    assert [f["code"] for f in result["findings"]] == ["forward-failed"]  # no cascade


def test_constructor_that_raises_blocks_every_other_check():
    result = run_check(f"{ROBUST}:ConstructRaises2d")
    assert [f["code"] for f in result["findings"]] == ["construct-failed"]
    assert "RuntimeError: cannot allocate the running statistics" in result["findings"][0]["message"]
    for check in result["checks"]:
        if check["id"] == "construct-failed":
            assert check["status"] == "failed"
        else:
            assert (check["status"], check["reason"]) == ("blocked", "blocked by construct-failed")
    assert result["summary"]["counts"]["blocked"] == len(result["checks"]) - 1
    assert result["summary"]["exit_code"] == 1


def test_forward_returning_a_tuple_is_forward_failed():
    result = run_check(f"{ROBUST}:ReturnsTuple2d")
    assert [f["code"] for f in result["findings"]] == ["forward-failed"]
    assert "tuple" in result["findings"][0]["message"]
    assert statuses(result)["forward-failed"] == "failed"


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """The result without what legitimately changes between runs (timings, timestamps)."""
    checks = [{k: v for k, v in c.items() if k != "duration_s"} for c in result["checks"]]
    summary = {k: v for k, v in result["summary"].items() if k != "duration_s"}
    return {
        "checks": checks,
        "findings": result["findings"],
        "summary": summary,
        "fingerprint": result["fingerprint"],
        "plots": result["plots"],
    }


@pytest.mark.parametrize("target", ["torch.nn:BatchNorm2d", "bnconform.examples.tutorial:BatchNorm"])
def test_same_seed_same_result(target):
    first, second = run_check(target, seed=3), run_check(target, seed=3)
    assert comparable(first) == comparable(second)


@pytest.mark.parametrize("seed", [1, 7, 12345])
def test_other_seeds_keep_torch_batchnorm_clean(seed):
    result = run_check("torch.nn:BatchNorm2d", seed=seed)
    assert result["findings"] == []
    assert result["settings"]["seed"] == seed
    assert result["summary"]["counts"]["failed"] == 0


def test_statistics_that_vanish_after_some_steps_are_findings_never_our_error():
    """Every probe that reads the running statistics after a step tolerates them being gone."""
    result = run_check(f"{ROBUST}:DropsRunningMean2d")
    assert result["summary"]["counts"]["errored"] == 0 and result["summary"]["exit_code"] == 1
    mismatch = findings(result, "sequence-mismatch")
    assert mismatch and "implementation no readable tensor" in mismatch[0]["message"]
    assert result["plots"]["running_stats_trace"] is None or len(result["plots"]["running_stats_trace"]["steps"]) < 21
