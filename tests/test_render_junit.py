"""JUnit XML: read back by a real JUnit parser and valid against the JUnit 10 XSD."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from junitparser import Error, Failure, JUnitXml, Skipped

from bnconform.render import junit

DATA = Path(__file__).parent / "data"


def sample(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"sample_result_{name}.json").read_text())


def parse(tmp_path: Path, result: dict[str, Any]) -> Any:
    path = tmp_path / "report.xml"
    path.write_text(junit.render(result), encoding="utf-8")
    suites = list(JUnitXml.fromfile(str(path)))
    assert len(suites) == 1
    return suites[0]


def test_failing_counts_and_failure(tmp_path: Path) -> None:
    suite = parse(tmp_path, sample("failing"))
    assert suite.name == "bnconform"
    # 5 failed checks: one only waived (-> skipped), one a warning below --fail-on error
    # (-> passed, finding in system-out); 4 skipped + 3 blocked
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (34, 3, 0, 8)
    cases = {case.name: case for case in suite}
    assert len(cases) == 34
    momentum = cases["momentum-inverted"]
    assert momentum.classname == "bnconform.running-stats"
    (failure,) = momentum.result
    assert isinstance(failure, Failure)
    assert failure.type == "momentum-inverted"
    assert failure.message == ("momentum-inverted: running_mean moved 90% of the way to the "
                               "batch mean; the spec moves it 10%")
    for part in ("expected: new-batch weight 0.1", "observed: new-batch weight 0.9", "why: ",
                 "hint: ", "repro:\nimport torch"):
        assert part in failure.text
    (blocked,) = cases["eval-uses-running-stats"].result
    assert isinstance(blocked, Skipped)
    assert blocked.message == "blocked by running-stats-shape (failed)"
    (waived,) = cases["state-dict-keys"].result
    assert isinstance(waived, Skipped) and waived.message == "waived: state-dict-keys"
    assert not cases["construct"].result
    props = {p.name: p.value for p in suite.properties()}
    assert props["spec"] == "pytorch" and props["seed"] == "0" and props["torch"] == "2.13.0"
    assert props["target"] == "bnconform.examples.tutorial:TutorialBatchNorm2d"


def test_errored_check_becomes_error(tmp_path: Path) -> None:
    suite = parse(tmp_path, sample("many"))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (34, 4, 1, 7)
    (error,) = next(c for c in suite if c.name == "double-backward").result
    assert isinstance(error, Error) and "KeyError" in error.message


@pytest.mark.parametrize("name", ["clean", "failing", "many"])
def test_valid_against_junit_xsd(name: str) -> None:
    schema = xmlschema.XMLSchema(str(DATA / "junit-10.xsd"))
    schema.validate(junit.render(sample(name)))


def test_illegal_xml_characters_are_shown_escaped() -> None:
    result = sample("failing")
    result["findings"][0]["message"] = "bad\x00\x01\x0b\x1b\ufffe chars"
    result["checks"][14]["findings"][0]["message"] = "bad\x00\x01\x0b\x1b\ufffe chars"
    result["checks"][14]["findings"][0]["repro"] = "print('\x07')\n"
    text = junit.render(result)
    root = ET.fromstring(text)
    failure = root.find("testcase[@name='momentum-inverted']/failure")
    assert failure is not None
    assert failure.get("message") == "momentum-inverted: bad\\x00\\x01\\x0b\\x1b\\ufffe chars"
    assert "print('\\x07')" in (failure.text or "")
    xmlschema.XMLSchema(str(DATA / "junit-10.xsd")).validate(text)


# Exact values (issue 13, mutation testing): every attribute, message and text the renderer
# writes is pinned, on small synthetic results built from the failing sample.


def root_of(result: dict[str, Any]) -> ET.Element:
    return ET.fromstring(junit.render(result))


def cases_by_name(root: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in root.iter("testcase")}


def outcome_elements(case: ET.Element) -> list[tuple[str, dict[str, str], str | None]]:
    return [(el.tag, dict(el.attrib), el.text) for el in case]


def check(cid: str, status: str, findings: list[dict[str, Any]] | None = None, reason: str = "",
          duration: Any = 0.001, area: str = "running-stats") -> dict[str, Any]:
    return {"id": cid, "area": area, "title": cid, "status": status, "reason": reason,
            "findings": findings or [], "measurements": {}, "duration_s": duration}


def finding(code: str, severity: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "severity": severity, "message": message, "waived": False, **extra}


def synthetic(checks: list[dict[str, Any]], fail_on: str | None = "error", exit_code: Any = 1,
              verdict: str = "fail", duration: Any = 0.5) -> dict[str, Any]:
    result = sample("failing")
    result["checks"] = checks
    if fail_on is None:
        del result["settings"]["fail_on"]
    else:
        result["settings"]["fail_on"] = fail_on
    result["summary"]["exit_code"] = exit_code
    result["summary"]["verdict"] = verdict
    if duration is None:
        del result["summary"]["duration_s"]
    else:
        result["summary"]["duration_s"] = duration
    return result


@pytest.mark.parametrize(("name", "counts"), [
    ("clean", ("34", "0", "0", "3", "0.564")),
    ("failing", ("34", "3", "0", "8", "0.568")),
    ("many", ("34", "4", "1", "7", "0.568")),
])
def test_suite_attributes_are_exact(name: str, counts: tuple[str, ...]) -> None:
    root = root_of(sample(name))
    tests, failures, errors, skipped, time = counts
    assert root.attrib == {"name": "bnconform", "tests": tests, "failures": failures, "errors": errors,
                           "skipped": skipped, "time": time, "timestamp": "2026-11-26T10:00:00+00:00"}
    assert "verdict" not in cases_by_name(root)  # every failing exit code here is explained by a check
    assert len(root.findall("testcase")) == 34


def test_testcase_attributes_and_passed_checks_are_bare() -> None:
    root = root_of(sample("failing"))
    case = cases_by_name(root)["momentum-inverted"]
    assert case.attrib == {"classname": "bnconform.running-stats", "name": "momentum-inverted",
                           "time": "0.011"}
    construct = cases_by_name(root)["construct"]
    assert construct.attrib == {"classname": "bnconform.construction", "name": "construct", "time": "0.002"}
    assert list(construct) == []  # passed, no findings: no <system-out> either
    result = synthetic([check("no-area", "passed", area="")])
    assert cases_by_name(root_of(result))["no-area"].get("classname") == "bnconform.checks"


def test_suite_time_sums_the_checks_when_the_summary_lacks_it() -> None:
    checks = [check("a", "passed", duration=0.25), check("b", "passed", duration=0.5),
              check("c", "passed", duration=None), check("d", "passed", duration="slow")]
    for duration in (None, "0.9"):
        root = root_of(synthetic(checks, exit_code=0, verdict="pass", duration=duration))
        assert root.get("time") == "0.750"
        assert [case.get("time") for case in root.iter("testcase")] == ["0.250", "0.500", "0.000", "0.000"]


def test_negative_durations_are_shown_as_zero() -> None:
    root = root_of(synthetic([check("a", "passed", duration=-0.25)], exit_code=0, duration=-0.5))
    assert root.get("time") == "0.000"
    assert cases_by_name(root)["a"].get("time") == "0.000"
    root = root_of(synthetic([check("a", "passed", duration=-0.25)], exit_code=0, duration=None))
    assert root.get("time") == "0.000"


def test_fail_on_error_fails_errors_and_lists_the_rest_below() -> None:
    found = [finding("x-info", "info", "an info"), finding("x-warn", "warning", "a warning"),
             finding("x-err", "error", "an error")]
    root = root_of(synthetic([check("x", "failed", found)], fail_on="error"))
    assert (root.get("failures"), root.get("skipped"), root.get("tests")) == ("1", "0", "1")
    assert outcome_elements(cases_by_name(root)["x"]) == [
        ("failure", {"message": "x-err: an error", "type": "x-err"}, "[error] x-err: an error"),
        ("system-out", {}, "reported, below --fail-on (does not fail the run):\n\n"
                           "[info] x-info: an info\n\n[warning] x-warn: a warning"),
    ]


@pytest.mark.parametrize("fail_on", ["warning", "info"])
def test_fail_on_lower_thresholds_fail_more_findings(fail_on: str) -> None:
    found = [finding("x-info", "info", "an info"), finding("x-warn", "warning", "a warning"),
             finding("x-err", "error", "an error")]
    root = root_of(synthetic([check("x", "failed", found)], fail_on=fail_on))
    elements = outcome_elements(cases_by_name(root)["x"])
    # the most severe failing finding names the failure, all failing ones are in its text
    failing = "[error] x-err: an error\n\n[warning] x-warn: a warning"
    if fail_on == "warning":
        assert elements == [
            ("failure", {"message": "x-err: an error", "type": "x-err"}, failing),
            ("system-out", {}, "reported, below --fail-on (does not fail the run):\n\n[info] x-info: an info"),
        ]
    else:
        assert elements == [("failure", {"message": "x-err: an error", "type": "x-err"},
                             failing + "\n\n[info] x-info: an info")]


@pytest.mark.parametrize(("fail_on", "outcome"), [
    ("error", "passed"), ("warning", "failure"), ("info", "failure"), (None, "passed"), ("bogus", "passed"),
])
def test_a_warning_fails_exactly_at_fail_on_warning_or_lower(fail_on: str | None, outcome: str) -> None:
    only_warning = check("w", "failed", [finding("w", "warning", "a warning")])
    only_error = check("e", "failed", [finding("e", "error", "an error")])
    root = root_of(synthetic([only_warning, only_error], fail_on=fail_on))
    assert root.get("failures") == ("1" if outcome == "passed" else "2")
    warning_case = outcome_elements(cases_by_name(root)["w"])
    if outcome == "passed":
        assert warning_case == [("system-out", {}, "reported, below --fail-on (does not fail the run):"
                                                   "\n\n[warning] w: a warning")]
    else:
        assert warning_case == [("failure", {"message": "w: a warning", "type": "w"}, "[warning] w: a warning")]
    # an error fails at every threshold
    assert outcome_elements(cases_by_name(root)["e"]) == [
        ("failure", {"message": "e: an error", "type": "e"}, "[error] e: an error")]


def test_waived_findings_are_neither_failures_nor_listed_below() -> None:
    found = [finding("x-err", "error", "an error"), finding("x-waived", "warning", "waived one", waived=True)]
    all_waived = [finding("y-1", "error", "e", waived=True), finding("y-2", "info", "i", waived=True)]
    root = root_of(synthetic([check("x", "failed", found), check("y", "failed", all_waived)], fail_on="info"))
    assert outcome_elements(cases_by_name(root)["x"]) == [
        ("failure", {"message": "x-err: an error", "type": "x-err"}, "[error] x-err: an error")]
    assert outcome_elements(cases_by_name(root)["y"]) == [("skipped", {"message": "waived: y-1, y-2"}, None)]
    assert (root.get("failures"), root.get("skipped")) == ("1", "1")


def test_failure_type_and_message_come_from_the_finding_code() -> None:
    found = [finding("running-var-biased", "error", "running_var uses the biased estimator")]
    root = root_of(synthetic([check("running-var-estimator", "failed", found)]))
    (failure,) = cases_by_name(root)["running-var-estimator"]
    assert failure.attrib == {"message": "running-var-biased: running_var uses the biased estimator",
                              "type": "running-var-biased"}


def test_failure_without_findings_uses_the_reason_or_failed() -> None:
    root = root_of(synthetic([check("a", "failed", reason="probe crashed:\nno output"), check("b", "failed")]))
    assert outcome_elements(cases_by_name(root)["a"]) == [
        ("failure", {"message": "a: probe crashed: no output", "type": "a"}, "probe crashed:\nno output")]
    ((tag, attrib, text),) = outcome_elements(cases_by_name(root)["b"])
    assert (tag, attrib, text or "") == ("failure", {"message": "b: failed", "type": "b"}, "")


def test_failure_text_lists_every_field_of_the_finding() -> None:
    full = finding("momentum-inverted", "error", "moved 90%", expected="weight 0.1", observed="weight 0.9",
                   device="cpu", why="stale stats", hint="use (1 - m)", repro="import torch\nprint(1)\n\n",
                   consequences=[{"code": "running-mean-update"}, {"code": "eval-output"},
                                 {"code": "running-mean-update"}])
    root = root_of(synthetic([check("momentum-inverted", "failed", [full])]))
    (failure,) = cases_by_name(root)["momentum-inverted"]
    assert failure.text == ("[error] momentum-inverted: moved 90%\n"
                            "also explains: running-mean-update, eval-output\n"
                            "expected: weight 0.1\nobserved: weight 0.9\ndevice: cpu\nwhy: stale stats\n"
                            "hint: use (1 - m)\nrepro:\nimport torch\nprint(1)")
    blank = finding("b", "error", "m", expected=" ", caused_by="", repro="  ", consequences=[])
    root = root_of(synthetic([check("b", "failed", [blank])]))
    assert cases_by_name(root)["b"][0].text == "[error] b: m"


def test_a_check_failing_only_through_consequences_is_skipped_under_its_causes() -> None:
    consequence = check("eval-output", "failed", [
        finding("eval-output", "error", "eval output off", caused_by="running-var-estimator"),
        finding("eval-output-2", "warning", "also off", caused_by="eps-placement"),
    ])
    skipped = [check("s1", "skipped", reason="no such feature"), check("s2", "blocked", reason="blocked by x"),
               check("s3", "failed", [finding("s3", "error", "w", waived=True)])]
    failing = check("running-var-estimator", "failed", [finding("running-var-estimator", "error", "biased")])
    root = root_of(synthetic([consequence, *skipped, failing]))
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("5", "1", "0", "4")
    assert outcome_elements(cases_by_name(root)["eval-output"]) == [
        ("skipped", {"message": "a consequence of eps-placement, running-var-estimator: fix that first"}, None),
        ("system-out", {}, "[error] eval-output: eval output off\n"
                           "caused by: running-var-estimator (fix that first)\n\n"
                           "[warning] eval-output-2: also off\ncaused by: eps-placement (fix that first)"),
    ]


def test_a_consequence_failure_below_a_root_failure_names_its_cause() -> None:
    # one failing finding is a consequence, one is not: the check fails, the message names the cause
    found = [finding("a", "error", "first", caused_by="root-check"), finding("b", "error", "second")]
    root = root_of(synthetic([check("mixed", "failed", found)]))
    (failure,) = cases_by_name(root)["mixed"]
    assert failure.attrib == {"message": "a: first (a consequence of root-check)", "type": "a"}
    assert failure.text == "[error] a: first\ncaused by: root-check (fix that first)\n\n[error] b: second"


def test_skip_messages() -> None:
    root = root_of(synthetic([check("s", "skipped", reason="the class has\nno such feature"),
                              check("b", "blocked", reason="blocked by x (failed)"),
                              check("n", "skipped"), check("nb", "blocked")], exit_code=0))
    assert {name: [el.attrib for el in case] for name, case in cases_by_name(root).items()} == {
        "s": [{"message": "the class has no such feature"}], "b": [{"message": "blocked by x (failed)"}],
        "n": [{"message": "skipped"}], "nb": [{"message": "blocked"}]}
    assert (root.get("tests"), root.get("skipped"), root.get("failures")) == ("4", "4", "0")


def test_errored_check_is_an_error_with_its_reason() -> None:
    root = root_of(synthetic([check("e", "errored", reason="check raised\nKeyError"), check("f", "errored")]))
    assert outcome_elements(cases_by_name(root)["e"]) == [
        ("error", {"message": "check raised KeyError", "type": "errored"}, "check raised\nKeyError")]
    ((tag, attrib, text),) = outcome_elements(cases_by_name(root)["f"])
    assert (tag, attrib, text or "") == ("error", {"message": "errored", "type": "errored"}, "")
    assert (root.get("failures"), root.get("errors")) == ("0", "2")


def test_an_unexplained_failing_verdict_gets_its_own_failing_testcase() -> None:
    # inconclusive: the class could not be built and that was waived; everything else blocked
    checks = [check("construct", "failed", [finding("construct", "error", "cannot build", waived=True)]),
              check("forward-runs", "blocked", reason="blocked by construct (failed)"),
              check("output-shape", "blocked", reason="blocked by construct (failed)")]
    root = root_of(synthetic(checks, exit_code=1, verdict="Inconclusive"))
    assert root.attrib == {"name": "bnconform", "tests": "4", "failures": "1", "errors": "0", "skipped": "3",
                           "time": "0.500", "timestamp": "2026-11-26T10:00:00+00:00"}
    verdict = root.findall("testcase")[-1]
    assert verdict.attrib == {"classname": "bnconform.run", "name": "verdict", "time": "0.000"}
    assert outcome_elements(verdict) == [(
        "failure", {"message": "verdict: inconclusive", "type": "inconclusive"},
        "The run's verdict is inconclusive (exit code 1) although no check failed: nothing was verified.")]
    one = root_of(synthetic(checks[:1], exit_code=2, verdict="inconclusive"))
    assert (one.get("tests"), one.get("failures")) == ("2", "1")
    assert "(exit code 2)" in (one.findall("testcase")[-1][0].text or "")


@pytest.mark.parametrize(("statuses", "exit_code"), [
    (["errored"], 1), (["failed", "errored"], 1), (["failed", "failed"], 1), (["failed", "errored", "errored"], 1),
    (["passed", "skipped"], 0), (["passed"], None), (["passed", "passed", "passed"], 0),
])
def test_no_verdict_testcase_when_a_check_explains_the_exit_code(statuses: list[str], exit_code: Any) -> None:
    checks = [check(f"c{i}", s, [finding(f"c{i}", "error", "bad")] if s == "failed" else None)
              for i, s in enumerate(statuses)]
    result = synthetic(checks, exit_code=exit_code)
    if exit_code is None:
        del result["summary"]["exit_code"]
    root = root_of(result)
    assert "verdict" not in cases_by_name(root)
    assert root.get("tests") == str(len(statuses))
    assert root.get("failures") == str(statuses.count("failed"))
    assert root.get("errors") == str(statuses.count("errored"))


def test_a_blank_cause_is_no_cause() -> None:
    """A hand-edited or foreign result with caused_by " ": the check fails on its own finding."""
    root = root_of(synthetic([check("x", "failed", [finding("x", "error", "off", caused_by=" ")])]))
    (failure,) = cases_by_name(root)["x"]
    assert failure.tag == "failure" and failure.attrib == {"message": "x: off", "type": "x"}
