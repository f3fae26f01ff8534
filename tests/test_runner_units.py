"""The runner's rules, one at a time (issue 13): order, blocking, profiles, how a check's outcome
becomes a result, and how a worker's crash is taken over. The corpus runs reach these only in
combination, and the supervised worker's resumption only in a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from torch import nn

from bnconform import runner
from bnconform.construct import Unsupported
from bnconform.errors import UserCodeError
from bnconform.findings import CheckResult, Severity, Status
from bnconform.probes import impact as impact_probes
from bnconform.registry import CheckSpec, Verdict, failed, get_check
from bnconform.supervise.session import CURRENT
from tests._contexts import context


def spec(code: str, fn: Any = lambda ctx: Verdict("passed"), requires: tuple[str, ...] = (),
         profile: str = "default") -> CheckSpec:
    return CheckSpec(code, "area", f"title of {code}", Severity.ERROR, "why", "hint", requires, profile, fn)


def result(code: str, status: Status, reason: str = "") -> CheckResult:
    return CheckResult(code, "area", "title", status, reason)


@pytest.fixture
def ctx():
    return context(nn.BatchNorm1d)


@pytest.fixture
def fresh_session() -> Iterator[None]:
    saved = dict(CURRENT.results), dict(CURRENT.crashes)
    CURRENT.results.clear()
    CURRENT.crashes.clear()
    yield
    CURRENT.results.clear()
    CURRENT.crashes.clear()
    CURRENT.results.update(saved[0])
    CURRENT.crashes.update(saved[1])


def test_a_check_runs_after_the_checks_it_requires_and_each_runs_once() -> None:
    late = spec("late", requires=("early", "not-registered"))
    early = spec("early", requires=("first",))
    first = spec("first")
    assert [c.code for c in runner.execution_order([late, early, first, early])] == ["first", "early", "late"]


def test_a_check_of_another_profile_is_skipped_with_the_profile_to_ask_for(ctx) -> None:
    outcome = runner.run_one(ctx, spec("deep", profile="thorough"), {}, set())
    assert (outcome.status, outcome.reason) == (Status.SKIPPED, "runs with --profile thorough")


@pytest.mark.parametrize("status", [Status.FAILED, Status.BLOCKED, Status.ERRORED])
def test_a_prerequisite_that_did_not_pass_blocks_with_the_root_cause(ctx, status: Status) -> None:
    done = {"root": result("root", Status.FAILED),
            "middle": result("middle", Status.BLOCKED, "blocked by root"),
            "first": result("first", status, "blocked by middle" if status == Status.BLOCKED else "")}
    outcome = runner.run_one(ctx, spec("last", requires=("first",)), done, set())
    assert outcome.status == Status.BLOCKED
    assert outcome.reason == ("blocked by root" if status == Status.BLOCKED else "blocked by first")


@pytest.mark.parametrize("status", [Status.PASSED, Status.SKIPPED])
def test_a_prerequisite_that_passed_or_was_skipped_blocks_nothing(ctx, status: Status) -> None:
    outcome = runner.run_one(ctx, spec("last", requires=("first",)), {"first": result("first", status)}, set())
    assert outcome.status == Status.PASSED
    assert outcome.duration_s > 0


def test_the_root_cause_stops_at_a_blocked_reason_that_names_no_check() -> None:
    done = {"a": result("a", Status.BLOCKED, "blocked by b"), "b": result("b", Status.BLOCKED, "runs elsewhere"),
            "c": result("c", Status.BLOCKED, "blocked by gone")}
    assert runner.root_cause("a", done) == "b"
    assert runner.root_cause("c", done) == "gone"


def raises(error: BaseException) -> Any:
    def fn(ctx: Any) -> Verdict:
        raise error
    return fn


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize(("error", "reason"), [
    (ValueError("bad axis"), "internal error: ValueError: bad axis"),
    (SystemExit(4), "internal error: SystemExit: 4"),
    (Unprintable(), "internal error: Unprintable: <str() raised>"),
])
def test_an_error_of_ours_in_a_check_is_errored_never_passed(ctx, error: BaseException, reason: str) -> None:
    outcome = runner.evaluate(ctx, spec("x", raises(error)), set())
    assert (outcome.status, outcome.reason, outcome.findings) == (Status.ERRORED, reason, ())


def test_a_role_the_constructor_cannot_take_skips_the_check(ctx) -> None:
    outcome = runner.evaluate(ctx, spec("x", raises(Unsupported("momentum"))), set())
    assert (outcome.status, outcome.reason) == (Status.SKIPPED, "the constructor takes no momentum argument")


def test_a_verdict_becomes_a_result_with_the_check_s_words_and_the_verdict_s_severity(ctx, monkeypatch) -> None:
    monkeypatch.setattr(impact_probes, "impact", lambda ctx, code: None)
    verdict = failed("wrong", expected="e", observed="o", repro="r", severity=Severity.WARNING,
                     details={"k": 1}, measurements={"m": 2})
    outcome = runner.from_verdict(ctx, spec("x"), verdict, {"x"})
    (finding,) = outcome.findings
    assert (outcome.status, dict(outcome.measurements)) == (Status.FAILED, {"m": 2})
    assert (finding.code, finding.severity, finding.message, finding.expected, finding.observed, finding.repro) == (
        "x", Severity.WARNING, "wrong", "e", "o", "r")
    assert (finding.why, finding.hint, finding.device, finding.details, finding.waived) == (
        "why", "hint", ctx.settings.device, {"k": 1}, True)
    unwaived = runner.from_verdict(ctx, spec("x"), failed("wrong", expected="e", observed="o"), {"y"})
    assert unwaived.findings[0].severity == Severity.ERROR
    assert unwaived.findings[0].waived is False


def test_a_passed_verdict_has_no_finding(ctx) -> None:
    outcome = runner.from_verdict(ctx, spec("x"), Verdict("passed", reason="r", measurements={"m": 1}), set())
    assert (outcome.status, outcome.reason, outcome.findings, dict(outcome.measurements)) == (
        Status.PASSED, "r", (), {"m": 1})


@pytest.mark.parametrize(("measured", "details"), [
    (None, {}),
    ((float("nan"), "train"), {}),
    ((0.1234, "train"), {"impact": 0.1234, "impact_text": "alone, this makes training outputs differ from the spec's"
                                                          " by 12.34%"}),
    ((0.5, "eval"), {"impact": 0.5, "impact_text": f"alone, this makes eval outputs after {impact_probes.STEPS}"
                                                   " training steps differ from the spec's by 50.00%"}),
])
def test_a_finding_carries_what_its_deviation_alone_costs(ctx, monkeypatch, measured: Any, details: dict) -> None:
    monkeypatch.setattr(impact_probes, "impact", lambda ctx, code: measured)
    assert runner.impact_details(ctx, "momentum-inverted") == details


def test_a_crash_while_checking_is_filed_under_the_forward_with_the_check_named(ctx) -> None:
    error = UserCodeError("eval-mode forward", "ZeroDivisionError", "raised")
    outcome = runner.crashed(ctx, spec("momentum-inverted"), error, {"forward-failed"})
    (finding,) = outcome.findings
    owner = get_check("forward-failed")
    assert (outcome.check_id, outcome.status) == ("momentum-inverted", Status.FAILED)
    assert (finding.code, finding.severity, finding.why, finding.hint) == (
        "forward-failed", owner.severity, owner.why, owner.hint)
    assert finding.message == f"{error} (while checking momentum-inverted)"
    assert (finding.expected, finding.observed, finding.details, finding.waived) == (
        "returns normally", "raises", {"kind": "raised"}, True)
    assert "bn.eval()" in finding.repro and "bn.train()" not in finding.repro


@pytest.mark.parametrize(("kind", "expected", "observed"), [
    ("timeout", "returns normally", "hangs"),
    ("nan", "finite values", "NaN/inf"),
    ("crashed", "returns normally", "ends the process"),
    ("shape", "returns normally", "shape"),
])
def test_each_kind_of_crash_says_what_was_seen(ctx, kind: str, expected: str, observed: str) -> None:
    outcome = runner.crashed(ctx, spec("forward-failed"), UserCodeError("train-mode forward", "d", kind), set())
    (finding,) = outcome.findings
    assert (finding.code, finding.expected, finding.observed, finding.waived) == (
        "forward-failed", expected, observed, False)
    assert finding.message == str(UserCodeError("train-mode forward", "d", kind))
    assert "bn.train()" in finding.repro
    assert ("print('finite:', torch.isfinite(y).all())" in finding.repro) is (kind == "nan")


def test_a_failed_constructor_call_is_construct_failed_and_any_other_call_forward_failed(ctx) -> None:
    assert runner.culprit(UserCodeError("constructing BatchNorm(3)", "TypeError")) == "construct-failed"
    assert runner.culprit(UserCodeError("train-mode forward", "TypeError")) == "forward-failed"
    outcome = runner.crashed(ctx, spec("running-stats-missing"), UserCodeError("constructing X", "TypeError"), set())
    assert outcome.findings[0].code == "construct-failed"
    assert "bn.train()" not in outcome.findings[0].repro and "y = bn(x)" not in outcome.findings[0].repro


def test_a_construct_failure_stays_under_its_own_code_whatever_the_error_says(ctx) -> None:
    outcome = runner.crashed(ctx, spec("construct-failed"), UserCodeError("train-mode forward", "d"), set())
    assert outcome.findings[0].code == "construct-failed"
    assert " (while checking" not in outcome.findings[0].message


def test_a_result_a_dead_worker_sent_is_taken_over_unchanged(ctx, fresh_session) -> None:
    sent = result("x", Status.FAILED, "from the worker")
    CURRENT.results["x"] = sent.to_json()
    assert runner.execute(ctx, spec("x", raises(AssertionError("must not run"))), set()) == sent


@pytest.mark.parametrize("output", ["Fatal Python error: Segmentation fault", ""])
def test_the_crash_that_killed_the_worker_is_the_check_s_finding_with_its_last_words(ctx, fresh_session,
                                                                                  output: str) -> None:
    CURRENT.crashes["x"] = {"what": "train-mode forward", "detail": "the worker died", "kind": "crashed",
                            **({"output": output} if output else {})}
    outcome = runner.execute(ctx, spec("x", raises(AssertionError("must not run"))), set())
    (finding,) = outcome.findings
    assert (finding.code, finding.observed) == ("forward-failed", "ends the process")
    assert finding.details == ({"kind": "crashed", "output": output} if output else {"kind": "crashed"})


def test_without_a_result_or_crash_from_a_worker_the_check_runs(ctx, fresh_session) -> None:
    assert runner.resumed(ctx, spec("x"), set()) is None
    assert runner.execute(ctx, spec("x"), set()).status == Status.PASSED


@pytest.mark.parametrize("checking", ["affine-apply", "eps-default"])
def test_a_crash_names_the_check_it_happened_in_whichever_code_sorts_first(ctx, checking: str) -> None:
    """The culprit ("forward-failed") sorts after these codes: "named unless it is the culprit
    itself" is an identity, not an ordering."""
    error = UserCodeError("train-mode forward", "ValueError", "raised")
    (finding,) = runner.crashed(ctx, spec(checking), error, set()).findings
    assert finding.message == f"{error} (while checking {checking})"


@pytest.mark.parametrize("detail", ["the process ended with signal SIGSEGV", "oops: a lowercase exception class",
                                    "AssertionError: channels"], ids=["process-ended", "lowercase-class", "assertion"])
def test_a_constructor_that_killed_its_worker_is_construct_failed(detail: str) -> None:
    """The call decides the culprit, never the words of its error."""
    assert runner.culprit(UserCodeError("constructing BatchNorm(3)", detail, "crashed")) == "construct-failed"


@pytest.mark.parametrize("status", [Status.FAILED, Status.SKIPPED, Status.ERRORED, Status.PASSED])
def test_only_a_blocked_result_is_followed_to_its_root(status: Status) -> None:
    """A check that ran and whose own reason happens to read "blocked by ..." is a root itself."""
    done = {"a": result("a", status, "blocked by b"), "b": result("b", Status.FAILED)}
    assert runner.root_cause("a", done) == "a"


class ReturnsTuple(nn.BatchNorm2d):
    def forward(self, x):  # type: ignore[override]
        y = super().forward(x)
        return y, y.mean()


class ScalesInPlace(nn.BatchNorm2d):
    """Writes its (otherwise correct) output into its input."""

    def forward(self, x):  # type: ignore[override]
        return x.copy_(super().forward(x.detach().clone()))


def test_a_wrong_type_crash_repro_prints_what_bn_returned(capsys: pytest.CaptureFixture[str]) -> None:
    from bnconform.api import run_check

    crash = next(f for f in run_check(f"{__name__}:ReturnsTuple")["findings"] if f["code"] == "forward-failed")
    assert "returned the wrong type" in crash["message"]
    exec(compile(crash["repro"], "<repro>", "exec"), {})  # noqa: S102 - our own snippet
    assert capsys.readouterr().out == "bn(x) returned tuple (a tensor is expected)\n"


def test_an_in_place_leaf_crash_repro_gives_the_input_requires_grad() -> None:
    from bnconform.api import run_check

    result = run_check(f"{__name__}:ScalesInPlace")
    crash = next(f for f in result["findings"] if f["code"] == "forward-failed" and "requires grad" in f["message"])
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        exec(compile(crash["repro"], "<repro>", "exec"), {})  # noqa: S102 - our own snippet
