"""Root cause first: consequences are folded under their cause in the JSON and in every
format, the first finding is the one to fix first, and counting is unchanged."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from bnconform.diagnosis import CONSEQUENCES, EVERYTHING, annotate_checks, diagnose, explains, root_code
from bnconform.findings import CheckResult, Finding, Severity, Status
from bnconform.registry import known_codes
from bnconform.render import html, junit, markdown, terminal
from bnconform.result import summary

DATA = Path(__file__).parent / "data"


def finding(code: str, severity: str = "error", waived: bool = False, **details: Any) -> Finding:
    return Finding(code, Severity(severity), f"{code} message", "exp", "obs", "why", f"fix {code}",
                   details=details, waived=waived)


def codes(ordered: list[dict[str, Any]]) -> list[str]:
    return [f["code"] for f in ordered]


# The checks' order: consequences are found before their cause; an unrelated warning first.
FABRICATED = [
    finding("momentum-default", "warning"),
    finding("output-mismatch"),
    finding("sequence-mismatch"),
    finding("reduction-axes"),
    finding("grad-mismatch"),
    finding("state-dict", "warning", waived=True),
]


def test_consequences_are_folded_under_their_cause() -> None:
    ordered = diagnose(FABRICATED)
    assert codes(ordered) == ["reduction-axes", "momentum-default", "output-mismatch",
                              "sequence-mismatch", "grad-mismatch", "state-dict"]
    root = ordered[0]
    assert root["caused_by"] is None
    assert [c["code"] for c in root["consequences"]] == ["output-mismatch", "sequence-mismatch",
                                                         "grad-mismatch"]
    assert root["consequences"][0] == {"code": "output-mismatch", "message": "output-mismatch message"}
    for f in ordered[2:5]:
        assert f["caused_by"] == "reduction-axes" and f["consequences"] == []
        assert f["severity"] == "error"  # consequences keep their severity
    # momentum-default explains sequence-mismatch too, but reduction-axes is the more basic cause.
    assert ordered[1]["consequences"] == []
    assert ordered[-1]["waived"] and ordered[-1]["caused_by"] is None  # waived: no grouping


def test_error_consequences_of_an_error_cause_all_count() -> None:
    check = CheckResult("x", "area", "title", Status.FAILED, findings=tuple(FABRICATED))
    assert summary([check], FABRICATED, "error", 0.0)["counts"]["error"] == 4
    assert sum(1 for f in diagnose(FABRICATED) if f["severity"] == "error" and not f["waived"]) == 4


def test_the_checks_json_gets_the_settled_severity_and_waiver() -> None:
    from bnconform.diagnosis import effective_severities

    checked = [finding("eps-default", "warning", waived=True), finding("output-mismatch")]
    checks = [CheckResult(f.code, "a", "t", Status.FAILED, findings=(f,)).to_json() for f in checked]
    annotate_checks(checks, diagnose(effective_severities(checked)))  # as result.assemble does
    output = checks[1]["findings"][0]
    assert output["waived"] and output["details"]["waived_with"] == "eps-default"


def test_a_crash_explains_nothing_and_chains_resolve_to_the_root() -> None:
    # A crash another check ran into leaves what the other checks measured independent of it.
    ordered = diagnose([finding("state-dict"), finding("running-stats-shape"), finding("forward-failed")])
    causes = {f["code"]: f["caused_by"] for f in ordered}
    assert causes == {"forward-failed": None, "running-stats-shape": None, "state-dict": "running-stats-shape"}
    # Without the crash, running-stats-shape is the root of state-dict (a chain of one).
    ordered = diagnose([finding("state-dict"), finding("running-stats-shape")])
    assert codes(ordered) == ["running-stats-shape", "state-dict"]
    # reduction-axes -> running-stats-shape -> state-dict: everything under the deepest cause.
    assert root_code("state-dict", ["state-dict", "running-stats-shape", "reduction-axes"]) == "reduction-axes"


def test_order_severity_then_roots_then_impact_then_stable() -> None:
    found = [finding("affine-init", "warning"), finding("momentum-inverted", impact=0.05),
             finding("eps-placement", impact=0.4), finding("running-stats-init"),
             finding("num-batches-tracked", "info")]
    assert codes(diagnose(found)) == ["eps-placement", "momentum-inverted", "running-stats-init",
                                      "affine-init", "num-batches-tracked"]


def test_a_warning_root_of_an_error_comes_before_other_warnings() -> None:
    # eps-default (warning) explains unstable-variance (error): it is the thing to fix first.
    found = [finding("affine-init", "warning"), finding("unstable-variance"), finding("eps-default", "warning")]
    ordered = diagnose(found)
    assert codes(ordered) == ["eps-default", "affine-init", "unstable-variance"]
    assert ordered[2]["caused_by"] == "eps-default"


def test_the_table_names_real_codes_and_has_no_cycles() -> None:
    known = set(known_codes())
    for cause, targets in CONSEQUENCES.items():
        assert cause in known, cause
        assert all(t in known or t == EVERYTHING for t in targets), (cause, targets)
    for cause in CONSEQUENCES:  # no code explains itself through a chain
        seen, frontier = set(), [cause]
        while frontier:
            code = frontier.pop()
            for nxt in CONSEQUENCES:
                if nxt not in seen and EVERYTHING not in CONSEQUENCES[code] and explains(code, nxt):
                    seen.add(nxt)
                    frontier.append(nxt)
        assert cause not in seen, cause


def fabricated_result() -> dict[str, Any]:
    """The failing sample with its findings replaced by a diagnosed cause and consequences."""
    result = json.loads((DATA / "sample_result_failing.json").read_text())
    found = FABRICATED[:5]
    checks = [CheckResult(f.code, "normalization", f.code, Status.FAILED, findings=(f,)).to_json() for f in found]
    result["findings"] = diagnose(found)
    annotate_checks(checks, result["findings"])
    result["checks"] = checks
    result["summary"]["counts"] = {}
    return result


def test_every_format_nests_the_consequences_under_the_cause() -> None:
    result = fabricated_result()
    text = terminal.render(result)
    rows = [line.split()[1:3] for line in text.splitlines() if line.startswith(("error", "warning"))]
    assert rows == [["reduction-axes", "reduction-axes"], ["└", "output-mismatch"],
                    ["└", "sequence-mismatch"], ["└", "grad-mismatch"], ["momentum-default", "momentum-default"]]
    assert "Fix first: reduction-axes: fix reduction-axes" in text

    text = markdown.render(result)
    first_screen = text.split("## ", 1)[0]
    assert "**Fix first:** **reduction-axes**" in first_screen
    assert "Also explains: output-mismatch, sequence-mismatch, grad-mismatch." in first_screen
    root, second = text.index("### 1. reduction-axes"), text.index("### 2. momentum-default")
    block = text[root:second]
    assert "**Consequences of reduction-axes**" in block
    for code in ("output-mismatch", "sequence-mismatch", "grad-mismatch"):
        assert f"- **{code}** (error)" in block
        assert f"### {code}" not in text and not re.search(rf"### \d+\. {code}", text)

    page = html.render(result)
    start = page.index('id="finding-1"')
    end = page.index('id="finding-2"')
    root_article = page[start:end]
    assert "reduction-axes" in root_article.split("</h4>")[0]
    assert root_article.count('class="finding error consequence"') == 3
    assert "A consequence of <code>reduction-axes</code>" in root_article
    assert "momentum-default" in page[end:].split("</article>")[0]

    suite = ET.fromstring(junit.render(result))
    skipped = suite.find("testcase[@name='output-mismatch']/skipped")  # its cause's testcase fails
    assert skipped is not None and "a consequence of reduction-axes" in (skipped.get("message") or "")
    assert suite.find("testcase[@name='reduction-axes']/failure") is not None
    cause = suite.find("testcase[@name='reduction-axes']/failure")
    assert cause is not None and "also explains: output-mismatch, sequence-mismatch, grad-mismatch" in (
        cause.text or "")


def test_old_results_without_grouping_still_render_flat() -> None:
    result = fabricated_result()
    for f in result["findings"]:
        f.pop("caused_by"), f.pop("consequences")
    text = markdown.render(result)
    assert "Consequences of" not in text
    assert text.index("### 1. reduction-axes") < text.index("### 4. grad-mismatch") < text.index(
        "### 5. momentum-default")  # by severity, stable
    assert "└" not in terminal.render(result)


def test_among_equal_roots_the_one_that_explains_more_comes_first() -> None:
    found = [finding("input-rank-unsupported"), finding("running-stats-shape"), finding("momentum-inverted"),
             finding("sequence-mismatch"), finding("device-parity")]
    ordered = diagnose(found)
    # The momentum rows take precedence over the shape row for value differences.
    assert codes(ordered)[:3] == ["momentum-inverted", "input-rank-unsupported", "running-stats-shape"]
    assert [c["code"] for c in ordered[0]["consequences"]] == ["sequence-mismatch", "device-parity"]
    # Measured impact still outranks the count.
    found[1] = finding("running-stats-shape", impact=0.3)
    assert codes(diagnose(found))[0] == "running-stats-shape"


def test_dtype_support_stays_its_own_root_next_to_a_spec_deviation() -> None:
    # dtype-support compares each precision with the class's own float64 result: a momentum or
    # normalization bug does not explain it, nor does a shape or registration defect (its
    # low-precision values are the class's own arithmetic); cancellation does.
    for cause in ("momentum-inverted", "reduction-axes", "running-stats-shape", "running-stats-not-buffers"):
        assert all(f["caused_by"] is None for f in diagnose([finding(cause), finding("dtype-support")])), cause
    assert diagnose([finding("unstable-variance"), finding("dtype-support")])[1]["caused_by"] == "unstable-variance"


def test_a_capped_consequence_shows_the_severity_its_check_measured() -> None:
    from bnconform.diagnosis import effective_severities

    result = fabricated_result()
    result["findings"] = diagnose(effective_severities([finding("eps-default", "warning"),
                                                        finding("output-mismatch")]))
    assert "- **output-mismatch** (warning (measured: error)):" in markdown.render(result)
    assert "warning (measured: error)</span>" in html.render(result)
