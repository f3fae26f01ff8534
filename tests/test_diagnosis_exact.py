"""Diagnosis details the broader tests leave loose (mutation testing, issue 13): what measured
evidence decides, how consequences are ordered and capped, what waiving a cause waives, and
how the checks' JSON finds its diagnosed twin."""

from __future__ import annotations

import typing
from typing import Any

import pytest

from bnconform import diagnosis
from bnconform.diagnosis import annotate_checks, diagnose, effective_severities, explains, root_code
from bnconform.findings import CheckResult, Finding, Severity, Status


def finding(code: str, severity: str = "error", waived: bool = False, message: str = "", **details: Any) -> Finding:
    return Finding(code, Severity(severity), message or f"{code} message", "exp", "obs", "why", "fix",
                   details=details, waived=waived)


def fresh(text: str) -> str:
    """An equal string that is a different object (as parsed from JSON or a spec file)."""
    return "".join(list(text))


def test_a_code_never_explains_itself_even_as_another_string_object() -> None:
    assert not explains(fresh("running-stats-shape"), "running-stats-shape")
    assert explains(fresh("running-stats-shape"), "state-dict")


def test_a_cyclic_table_still_resolves(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table is acyclic (test_diagnosis), but root_code must not rely on it to terminate."""
    monkeypatch.setattr(diagnosis, "CONSEQUENCES", {"eps-default": ("eps-placement",),
                                                    "eps-placement": ("eps-default",)})
    assert root_code("eps-default", ["eps-default", "eps-placement"]) in {"eps-default", "eps-placement"}


def test_measured_evidence_beats_the_tables_precedence() -> None:
    # By the table, eps-placement (an earlier row) explains output-mismatch; the comparison
    # measured that the eps default alone reproduces it.
    found = [finding("eps-placement"), finding("eps-default"),
             finding("output-mismatch", explained_by=["eps-default", "eps-placement"])]
    causes = {f["code"]: f["caused_by"] for f in diagnose(found)}
    assert causes["output-mismatch"] == "eps-default"
    found[2] = finding("output-mismatch", explained_by=["eps-placement", "eps-default"])
    assert {f["code"]: f["caused_by"] for f in diagnose(found)}["output-mismatch"] == "eps-placement"


def test_a_mismatch_that_remains_with_the_deviations_accounted_for_is_its_own_root() -> None:
    found = [finding("eps-placement"), finding("output-mismatch", accounted_for=["eps-placement"])]
    assert all(f["caused_by"] is None for f in diagnose(found))


def test_explained_by_a_code_that_is_not_present_falls_back_to_the_table() -> None:
    found = [finding("eps-placement"), finding("output-mismatch", explained_by=["affine-apply"])]
    assert {f["code"]: f["caused_by"] for f in diagnose(found)}["output-mismatch"] == "eps-placement"


def test_consequences_are_listed_most_severe_first() -> None:
    found = [finding("reduction-axes"), finding("memory-format", "warning"), finding("output-mismatch")]
    root = diagnose(found)[0]
    assert [c["code"] for c in root["consequences"]] == ["output-mismatch", "memory-format"]


def test_a_consequence_keeps_a_lower_severity_and_gets_no_measured_severity_when_equal() -> None:
    capped = effective_severities([finding("running-stats-shape"), finding("state-dict", "warning"),
                                   finding("output-mismatch", "error")])
    by_code = {f.code: f for f in capped}
    assert by_code["state-dict"].severity is Severity.WARNING  # never raised to its cause's
    assert "measured_severity" not in by_code["output-mismatch"].details
    capped = effective_severities([finding("eps-default", "warning"), finding("output-mismatch")])
    by_code = {f.code: f for f in capped}
    assert by_code["output-mismatch"].severity is Severity.WARNING
    assert by_code["output-mismatch"].details["measured_severity"] == "error"


def test_waiving_a_cause_waives_its_consequences_whatever_their_names_sort_like() -> None:
    # "running-stats-shape" sorts after "output-mismatch" and "state-dict" after it: both directions.
    out = effective_severities([finding("running-stats-shape", waived=True), finding("output-mismatch"),
                                finding("state-dict")])
    assert all(f.waived for f in out)
    assert {f.code: f.details.get("waived_with") for f in out} == {
        "running-stats-shape": None, "output-mismatch": "running-stats-shape", "state-dict": "running-stats-shape"}


def test_measured_findings_come_before_unmeasured_ones_of_the_same_severity() -> None:
    found = [finding("running-stats-init"), finding("momentum-inverted", impact=0.01)]
    assert [f["code"] for f in diagnose(found)] == ["momentum-inverted", "running-stats-init"]
    found[1] = finding("momentum-inverted", impact=0.0)  # measured to change nothing is still measured
    assert [f["code"] for f in diagnose(found)] == ["momentum-inverted", "running-stats-init"]


def test_a_root_explaining_two_comes_before_one_explaining_one() -> None:
    found = [finding("device-transfer"), finding("device-parity"), finding("num-batches-tracked"),
             finding("state-dict"), finding("sequence-mismatch")]
    ordered = diagnose(found)
    roots = [(f["code"], [c["code"] for c in f["consequences"]]) for f in ordered if f["caused_by"] is None]
    assert roots == [("num-batches-tracked", ["state-dict", "sequence-mismatch"]),
                     ("device-transfer", ["device-parity"])]


def test_one_crash_seen_by_several_checks_gets_its_diagnosis_in_every_check() -> None:
    crash = "forward raised: RuntimeError: boom"
    seen = [finding("forward-failed", message=f"{crash} (while checking output-mismatch)"),
            finding("forward-failed", message=f"{crash} (while checking grad-mismatch)")]
    checks = [CheckResult(c, "a", "t", Status.FAILED, findings=(f,)).to_json()
              for c, f in zip(("output-mismatch", "grad-mismatch"), seen, strict=True)]
    diagnosed = diagnose([finding("forward-failed", "warning", message=crash)])
    annotate_checks(checks, diagnosed)
    assert [c["findings"][0]["severity"] for c in checks] == ["warning", "warning"]


def test_the_type_hints_of_the_diagnosis_resolve() -> None:
    """Annotations are strings (postponed); tools that resolve them (IDEs, docs) must not break."""
    assert typing.get_type_hints(diagnosis.Node.impact.fget) == {"return": float | None}
    assert typing.get_type_hints(diagnosis.measured_root)["return"] == str | None
    assert typing.get_type_hints(diagnosis.annotated)["caused_by"] == str | None


def test_a_catch_all_cause_still_does_not_explain_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagnosis, "CONSEQUENCES", {"affine-apply": (diagnosis.EVERYTHING,)})
    assert explains("affine-apply", "output-mismatch")
    assert not explains(fresh("affine-apply"), "affine-apply")
