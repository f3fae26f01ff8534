"""The verdict (bnconform.verdict) from check results, pinned for every severity, --fail-on
threshold, waived and errored combination: the counts, the verdict and the exit code."""

from __future__ import annotations

import itertools
import math

import pytest

from bnconform.findings import CheckResult, Finding, Severity, Status
from bnconform.verdict import finite, summary, unique_findings
from tests._strings import fresh

SEVERITIES = ("error", "warning", "info")
ZERO = {"error": 0, "warning": 0, "info": 0, "waived": 0,
        "passed": 0, "failed": 0, "skipped": 0, "blocked": 0, "errored": 0}



def finding(code: str = "bad-output", severity: str = "error", waived: bool = False, message: str = "wrong",
            device: str = "cpu") -> Finding:
    return Finding(code, Severity(severity), message, "e", "o", "why", "hint", device=device, waived=waived)


def check(status: str, check_id: str = "output-matches", *findings: Finding) -> CheckResult:
    return CheckResult(check_id, "area", "title", Status(status), findings=findings)


def verdict(checks: list[CheckResult], findings: list[Finding], fail_on: str = "error") -> tuple[str, int]:
    s = summary(checks, findings, fail_on, 0.0)
    return s["verdict"], s["exit_code"]


# -- unique_findings ----------------------------------------------------------------------------


def test_unique_findings_keeps_every_distinct_finding_in_order() -> None:
    a, b, c = finding("a"), finding("b"), finding("c", "warning")
    assert unique_findings([check("failed", "x", a, b), check("failed", "y", c)]) == [a, b, c]
    assert unique_findings([]) == []
    assert unique_findings([check("passed")]) == []


def test_one_crash_seen_by_several_checks_is_reported_once() -> None:
    first = finding("forward-failed", message="raised ValueError: boom (while checking output-matches)")
    again = finding("forward-failed", message="raised ValueError: boom (while checking running-mean)")
    other = finding("forward-failed", message="raised ValueError: other (while checking running-mean)")
    out = unique_findings([check("failed", "a", first), check("failed", "b", again, other)])
    assert out == [first, other]
    assert out[0] is first


def test_duplicates_are_told_apart_by_code_message_and_device() -> None:
    base = finding("forward-failed", message="boom")
    same = finding("forward-failed", message="boom")
    other_code = finding("construct-failed", message="boom")
    other_message = finding("forward-failed", message="bang")
    other_device = finding("forward-failed", message="boom", device="cuda")
    # The part after the marker does not tell two findings apart; the part before it does.
    suffix_only = finding("forward-failed", message="boom (while checking x)")
    marker_first = finding("forward-failed", message=" (while checking y) boom")
    checks = [check("failed", "a", base, same, other_code), check("failed", "b", other_message, other_device),
              check("failed", "c", suffix_only, marker_first)]
    assert unique_findings(checks) == [base, other_code, other_message, other_device, marker_first]


# -- counts -------------------------------------------------------------------------------------


def test_counts_are_zero_without_checks_or_findings() -> None:
    s = summary([], [], "error", 0.0)
    assert s == {"verdict": "pass", "exit_code": 0, "counts": ZERO, "duration_s": 0.0}


def test_counts_findings_by_severity_waived_apart_and_checks_by_status() -> None:
    findings = [finding(severity="error"), finding(severity="error"), finding(severity="warning"),
                finding(severity="info"), finding(severity="info"), finding(severity="info"),
                finding(severity="error", waived=True), finding(severity="info", waived=True)]
    checks = [check("passed"), check("passed"), check("failed"), check("skipped"), check("skipped"),
              check("skipped"), check("blocked"), check("errored"), check("errored")]
    counts = summary(checks, findings, "error", 1.0)["counts"]
    assert counts == {"error": 2, "warning": 1, "info": 3, "waived": 2,
                      "passed": 2, "failed": 1, "skipped": 3, "blocked": 1, "errored": 2}
    assert list(counts) == list(ZERO)


@pytest.mark.parametrize("status", [s.value for s in Status])
def test_each_status_is_counted_once(status: str) -> None:
    counts = summary([check(status)], [], "error", 0.0)["counts"]
    assert counts == {**ZERO, status: 1}


@pytest.mark.parametrize(("severity", "waived"), list(itertools.product(SEVERITIES, (False, True))))
def test_each_finding_is_counted_once(severity: str, waived: bool) -> None:
    counts = summary([], [finding(severity=severity, waived=waived)], "info", 0.0)["counts"]
    assert counts == {**ZERO, "waived" if waived else severity: 1}


def test_duration_is_rounded_to_milliseconds() -> None:
    # Not a timing assertion: summary() is handed a fixed number of seconds and only rounds it;
    # nothing is measured, so the machine's load cannot change the result.
    assert summary([], [], "error", 1.23456)["duration_s"] == 1.235
    assert summary([], [], "error", 2.0004)["duration_s"] == 2.0
    assert summary([], [], "error", 0.0996)["duration_s"] == 0.1


# -- the verdict and exit code ------------------------------------------------------------------


@pytest.mark.parametrize(("severity", "fail_on"), list(itertools.product(SEVERITIES, SEVERITIES)))
def test_a_finding_fails_the_run_when_at_or_above_the_threshold(severity: str, fail_on: str) -> None:
    rank = {"error": 2, "warning": 1, "info": 0}
    fails = rank[severity] >= rank[fail_on]
    checks = [check("passed", "other"), check("failed", "bad-output")]
    assert verdict(checks, [finding(severity=severity)], fail_on) == (("fail", 1) if fails else ("pass", 0))
    # Waived, it never fails the run (a passed check was verified, so it is not inconclusive either).
    assert verdict(checks, [finding(severity=severity, waived=True)], fail_on) == ("pass", 0)


def test_the_worst_finding_decides() -> None:
    checks = [check("passed")]
    mixed = [finding(severity="info"), finding(severity="warning"), finding(severity="error", waived=True)]
    assert verdict(checks, mixed, "error") == ("pass", 0)
    assert verdict(checks, mixed, "warning") == ("fail", 1)
    assert verdict(checks, mixed[::-1], "warning") == ("fail", 1)
    assert verdict(checks, [finding(severity="info"), finding(severity="error")], "error") == ("fail", 1)


@pytest.mark.parametrize("fail_on", SEVERITIES)
def test_an_errored_check_fails_the_run_without_any_finding(fail_on: str) -> None:
    assert verdict([check("passed"), check("errored")], [], fail_on) == ("fail", 1)
    assert verdict([check("errored"), check("passed")], [finding(severity="info", waived=True)], fail_on) \
        == ("fail", 1)
    assert verdict([check("errored")], [finding("construct-failed", waived=True)], fail_on) == ("fail", 1)


@pytest.mark.parametrize("status", ["passed", "failed", "skipped", "blocked"])
def test_no_other_status_fails_the_run_by_itself(status: str) -> None:
    assert verdict([check("passed", "a"), check(status, "b")], [], "info") == ("pass", 0)


def test_all_skipped_or_blocked_without_findings_passes() -> None:
    assert verdict([check("skipped"), check("blocked")], [], "error") == ("pass", 0)
    assert verdict([], [], "error") == ("pass", 0)


@pytest.mark.parametrize("code", ["construct-failed", "forward-failed"])
def test_a_waived_unbuildable_class_with_nothing_verified_is_inconclusive(code: str) -> None:
    waived = finding(code, waived=True)
    blocked = [check("failed", code, waived), check("blocked", "output-matches")]
    assert verdict(blocked, [waived], "error") == ("inconclusive", 1)
    assert verdict([check("skipped")], [finding("other-bug", severity="info"), waived], "error") \
        == ("inconclusive", 1)
    # Only the global-state check passing verifies nothing about the class.
    assert verdict(blocked + [check("passed", fresh("global-state-changed"))], [waived], "error") \
        == ("inconclusive", 1)
    # Any other passed check did verify something.
    assert verdict(blocked + [check("passed", "output-matches")], [waived], "error") == ("pass", 0)
    # A failure stays a failure.
    assert verdict(blocked, [waived, finding("other-bug")], "error") == ("fail", 1)
    assert verdict(blocked + [check("errored", "x")], [waived], "error") == ("fail", 1)


def test_other_waived_findings_or_unwaived_unbuildable_findings_are_not_inconclusive() -> None:
    blocked = [check("failed", "x"), check("blocked", "output-matches")]
    assert verdict(blocked, [finding("bad-output", waived=True)], "error") == ("pass", 0)
    # Below the threshold and not waived: reported, the run passes (it did not hide anything).
    assert verdict(blocked, [finding("construct-failed", severity="info")], "error") == ("pass", 0)
    assert verdict(blocked, [finding("forward-failed", severity="warning")], "error") == ("pass", 0)
    assert verdict(blocked, [finding("construct-failed")], "error") == ("fail", 1)


def test_a_passed_check_among_failed_ones_still_verifies() -> None:
    waived = finding("forward-failed", waived=True)
    checks = [check("failed", "a"), check("passed", "b"), check("skipped", "c")]
    assert verdict(checks, [waived], "error") == ("pass", 0)
    assert verdict([check("failed", "global-state-changed"), check("passed", "b")], [waived], "error") \
        == ("pass", 0)


# -- finite -------------------------------------------------------------------------------------


def test_finite_writes_non_finite_floats_as_strings() -> None:
    assert finite(math.nan) == "nan"
    assert finite(math.inf) == "inf"
    assert finite(-math.inf) == "-inf"


def test_finite_keeps_every_other_value() -> None:
    for value in (0.0, 1.5, -2.25, 1e308, 0, 7, True, None, "nan", "text", b"x"):
        out = finite(value)
        assert out == value and type(out) is type(value)


def test_finite_descends_into_dicts_lists_and_tuples() -> None:
    value = {"a": math.nan, "b": [1.0, math.inf, {"c": (-math.inf, 2)}], "d": (math.nan,), "e": "x"}
    out = finite(value)
    assert out == {"a": "nan", "b": [1.0, "inf", {"c": ["-inf", 2]}], "d": ["nan"], "e": "x"}
    assert type(out["d"]) is list and type(out["b"][2]["c"]) is list
    assert finite([]) == [] and finite(()) == [] and finite({}) == {}
