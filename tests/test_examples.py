"""The committed example reports are valid results and still match what the code reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnconform.render.json import load

EXAMPLES = Path(__file__).resolve().parent.parent / "reports" / "examples"
CASES = {"tutorial": "bnconform.examples.tutorial:BatchNorm", "torch-batchnorm2d": "torch.nn:BatchNorm2d"}


def outcome(result: dict) -> tuple[str, set[tuple[str, str]], dict[str, str]]:
    findings = {(f["code"], f["severity"]) for f in result["findings"]}
    statuses = {c["id"]: c["status"] for c in result["checks"]}
    return result["summary"]["verdict"], findings, statuses


@pytest.mark.parametrize("name", sorted(CASES))
def test_committed_example_matches_a_fresh_run(name: str) -> None:
    committed = load(EXAMPLES / name / "bnconform-report.json")
    # The CLI wrote them from a supervised worker (where global-state-changed runs): compare the same way.
    from bnconform.supervise.supervisor import run_supervised

    assert outcome(committed) == outcome(run_supervised(CASES[name])), (
        f"reports/examples/{name} is stale: run scripts/regenerate-examples.sh"
    )


def test_every_format_is_committed_and_the_tutorial_shows_the_plot() -> None:
    for name in CASES:
        for file in ("bnconform-report.json", "bnconform-report.md", "bnconform-report.html", "bnconform-report.xml"):
            assert (EXAMPLES / name / file).is_file()
    html = (EXAMPLES / "tutorial" / "bnconform-report.html").read_text()
    assert "<svg" in html and "momentum-inverted" in html


def test_committed_reports_open_with_the_verdict_and_the_fix_first() -> None:
    import json

    result = json.loads((EXAMPLES / "tutorial" / "bnconform-report.json").read_text())
    first = result["findings"][0]
    assert first["caused_by"] is None and first["severity"] == "error"  # the root cause to fix first
    md = (EXAMPLES / "tutorial" / "bnconform-report.md").read_text()
    screen = md.split("\n## ", 1)[0]
    assert "FAIL" in screen and f"**Fix first:** **{first['code']}**" in screen and "**How to fix:**" in screen
    html = (EXAMPLES / "tutorial" / "bnconform-report.html").read_text()
    assert html.index('id="fix-first"') < html.index('id="findings"') < html.index('id="fingerprint"') < html.index(
        'id="environment"')
