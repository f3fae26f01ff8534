"""JUnit XML: one <testsuite name="bnconform">, one <testcase> per check.

The run's one verdict rule (result.summary(), set by --fail-on) decides what is a failure:
a finding below --fail-on is reported in the testcase's <system-out>, never as a failure,
so a JUnit viewer goes red exactly when the exit code does.

Built with ElementTree (which escapes markup); control characters (which XML 1.0 forbids)
and bidi overrides in result text are shown escaped first (render/sanitize.py), so any class
name or message yields parseable, inert XML.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from bnconform.render import common as c


def render(result: Mapping[str, Any]) -> str:
    """The JUnit XML document (UTF-8 declaration, indented)."""
    checks = c.items(result, "checks")
    threshold = _threshold(result)
    suite = ET.Element("testsuite", _suite_attrs(result, checks, threshold))
    _properties(ET.SubElement(suite, "properties"), result)
    for check in checks:
        _testcase(suite, check, threshold)
    _unexplained_verdict(suite, result)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, "unicode") + "\n"


def _threshold(result: Mapping[str, Any]) -> int:
    """Rank of the lowest failing severity: the run's --fail-on (error when the file lacks it)."""
    fail_on = c.text(c.section(result, "settings").get("fail_on"))
    return c.severity_rank(fail_on if fail_on in c.SEVERITIES else "error")


def _fails(finding: Mapping[str, Any], threshold: int) -> bool:
    """The summary's rule for one finding: not waived, and at or above --fail-on."""
    return not finding.get("waived") and c.severity_rank(finding.get("severity")) <= threshold


def _suite_attrs(result: Mapping[str, Any], checks: list[Mapping[str, Any]], threshold: int) -> dict[str, str]:
    outcome = [_outcome(ch, threshold) for ch in checks]
    duration = c.section(result, "summary").get("duration_s")
    if not isinstance(duration, int | float):
        duration = sum(_duration(ch) for ch in checks)
    return {
        "name": "bnconform",
        "tests": str(len(checks)),
        "failures": str(outcome.count("failure")),
        "errors": str(outcome.count("error")),
        "skipped": str(outcome.count("skipped") + outcome.count("consequence")),
        "time": f"{max(float(duration), 0.0):.3f}",
        "timestamp": c.one_line(result.get("created")),
    }


def _unexplained_verdict(suite: ET.Element, result: Mapping[str, Any]) -> None:
    """A failing exit code that no check's failure explains (an inconclusive run: the class could
    not be built and that was waived) gets its own failing testcase, so JUnit never reads green
    while the exit code is 1."""
    exit_code = c.section(result, "summary").get("exit_code")
    if exit_code in (0, None) or int(suite.get("failures", "0")) + int(suite.get("errors", "0")):
        return
    verdict = c.verdict(result)
    case = ET.SubElement(suite, "testcase", {"classname": "bnconform.run", "name": "verdict", "time": "0.000"})
    ET.SubElement(case, "failure", {"message": f"verdict: {verdict}", "type": verdict}).text = (
        f"The run's verdict is {verdict} (exit code {exit_code}) although no check failed: nothing was verified.")
    suite.set("tests", str(int(suite.get("tests", "0")) + 1))
    suite.set("failures", str(int(suite.get("failures", "0")) + 1))


def _properties(props: ET.Element, result: Mapping[str, Any]) -> None:
    values = {
        "spec": c.section(result, "spec").get("name"),
        "target": c.section(result, "target").get("text"),
        "seed": c.section(result, "settings").get("seed"),
        "devices": c.devices(result),
        "torch": c.section(result, "environment").get("torch"),
        "bnconform": c.section(result, "tool").get("version"),
        "verdict": c.verdict(result),
        "domain": c.domain_sentence(result),  # "" when the result has no domain section
        "fail_on": c.section(result, "settings").get("fail_on"),
    }
    for name, value in values.items():
        ET.SubElement(props, "property", {"name": name, "value": c.one_line(value)})


def _outcome(check: Mapping[str, Any], threshold: int) -> str:
    """"failure" | "error" | "skipped" | "passed"; a failure whose findings are all waived
    is reported as skipped so a waiver never turns a CI dashboard red, one whose findings are
    below --fail-on as passed (its findings go to <system-out>)."""
    status = c.text(check.get("status"))
    if status == "failed":
        found = c.items(check, "findings")
        if found and all(f.get("waived") for f in found):
            return "skipped"
        failing = [f for f in found if _fails(f, threshold)]
        if failing and all(c.one_line(f.get("caused_by")) for f in failing):  # a blank cause is none
            return "consequence"  # its cause's testcase fails; this one is listed under it
        return "failure" if not found or failing else "passed"
    return {"errored": "error", "skipped": "skipped", "blocked": "skipped"}.get(status, "passed")


def _duration(check: Mapping[str, Any]) -> float:
    value = check.get("duration_s")
    return float(value) if isinstance(value, int | float) else 0.0


def _testcase(suite: ET.Element, check: Mapping[str, Any], threshold: int) -> None:
    area = c.one_line(check.get("area")) or "checks"
    case = ET.SubElement(suite, "testcase", {
        "classname": f"bnconform.{area}", "name": c.one_line(check.get("id")),
        "time": f"{max(_duration(check), 0.0):.3f}",
    })
    outcome = _outcome(check, threshold)
    if outcome == "failure":
        _failure(case, check, threshold)
    elif outcome == "error":
        el = ET.SubElement(case, "error", {"message": c.one_line(check.get("reason")) or "errored",
                                            "type": "errored"})
        el.text = c.text(check.get("reason"))
    elif outcome == "skipped":
        ET.SubElement(case, "skipped", {"message": _skip_message(check)})
    elif outcome == "consequence":
        causes = ", ".join(sorted({c.one_line(f.get("caused_by")) for f in c.items(check, "findings")} - {""}))
        ET.SubElement(case, "skipped", {"message": f"a consequence of {causes}: fix that first"})
        ET.SubElement(case, "system-out").text = "\n\n".join(_finding_text(f) for f in c.items(check, "findings"))
        return
    below = [f for f in c.items(check, "findings") if not f.get("waived") and not _fails(f, threshold)]
    if below:
        ET.SubElement(case, "system-out").text = "\n\n".join(
            ["reported, below --fail-on (does not fail the run):", *(_finding_text(f) for f in below)])


def _skip_message(check: Mapping[str, Any]) -> str:
    if c.text(check.get("status")) == "failed":
        codes = ", ".join(c.one_line(f.get("code")) for f in c.items(check, "findings"))
        return f"waived: {codes}"
    return c.one_line(check.get("reason")) or c.one_line(check.get("status"))


def _failure(case: ET.Element, check: Mapping[str, Any], threshold: int) -> None:
    found = sorted((f for f in c.items(check, "findings") if _fails(f, threshold)),
                   key=lambda f: c.severity_rank(f.get("severity")))
    first = found[0] if found else {}
    code = c.one_line(first.get("code") or check.get("id"))
    message = c.one_line(first.get("message") or check.get("reason") or "failed")
    cause = c.one_line(first.get("caused_by"))
    message += f" (a consequence of {cause})" if cause else ""
    el = ET.SubElement(case, "failure", {"message": f"{code}: {message}", "type": code})
    el.text = "\n\n".join(_finding_text(f) for f in found) or c.text(check.get("reason"))


def _finding_text(f: Mapping[str, Any]) -> str:
    lines = [f"[{c.one_line(f.get('severity'))}] {c.one_line(f.get('code'))}: "
             f"{c.one_line(f.get('message'))}"]
    if c.text(f.get("caused_by")).strip():  # folded under its root cause (bnconform.diagnosis)
        lines.append(f"caused by: {c.one_line(f.get('caused_by'))} (fix that first)")
    if c.consequence_line(c.items(f, "consequences")):
        lines.append(c.consequence_line(c.items(f, "consequences")))
    for label, key in (("expected", "expected"), ("observed", "observed"), ("device", "device"),
                       ("why", "why"), ("hint", "hint")):
        if c.text(f.get(key)).strip():
            lines.append(f"{label}: {c.one_line(f.get(key))}")
    if c.text(f.get("repro")).strip():
        lines += ["repro:", c.text(f.get("repro")).rstrip()]
    return "\n".join(lines)
