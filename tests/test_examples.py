"""The committed example reports are valid results and still match what the code reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnconform.api import run_check
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
    assert outcome(committed) == outcome(run_check(CASES[name])), (
        f"reports/examples/{name} is stale: run scripts/regenerate-examples.sh"
    )


def test_every_format_is_committed_and_the_tutorial_shows_the_plot() -> None:
    for name in CASES:
        for file in ("bnconform-report.json", "bnconform-report.md", "bnconform-report.html", "bnconform-report.xml"):
            assert (EXAMPLES / name / file).is_file()
    html = (EXAMPLES / "tutorial" / "bnconform-report.html").read_text()
    assert "<svg" in html and "momentum-inverted" in html
