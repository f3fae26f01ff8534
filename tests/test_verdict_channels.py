"""One verdict everywhere: for a target with warnings only, the exit code, the JUnit file, the
Markdown and HTML badges, the GitHub step summary and the terminal all say pass under the
default --fail-on error, and all say fail under --fail-on warning."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from bnconform.cli import main

WARNINGS_ONLY = "tests.fixtures.verdict:QuietBatchOfOne2d"  # batch-size-one: a warning, no error


def channels(capsys: pytest.CaptureFixture[str], folder: Path, *extra: str) -> dict[str, Any]:
    """Run the CLI once and read the verdict each channel reports."""
    summary = folder / "step-summary.md"
    code = main(["check", WARNINGS_ONLY, "--output", str(folder / "reports"), *extra])
    out = capsys.readouterr().out
    suite = ET.parse(folder / "reports" / "bnconform-report.xml").getroot()
    md = (folder / "reports" / "bnconform-report.md").read_text()
    html = (folder / "reports" / "bnconform-report.html").read_text()
    return {
        "exit": "pass" if code == 0 else "fail",
        "junit": "fail" if int(suite.get("failures")) + int(suite.get("errors")) else "pass",
        "junit-property": suite.find("properties/property[@name='verdict']").get("value"),
        "markdown": "pass" if md.startswith("# ✅ bnconform: PASS") else "fail" if md.startswith("# ❌") else "?",
        "html": re.search(r'<span class="badge (pass|fail)" id="verdict">', html).group(1),
        "step-summary": "pass" if summary.read_text().startswith("# ✅") else "fail",
        "terminal": out.split(":")[0].removeprefix("bnconform ").lower(),
        "suite": suite,
    }


@pytest.fixture
def ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "step-summary.md"))
    return tmp_path


def warning_cases(suite: ET.Element) -> list[ET.Element]:
    return [case for case in suite.iter("testcase") if case.find("system-out") is not None]


def test_warnings_only_target_passes_on_every_channel(capsys, ci) -> None:
    seen = channels(capsys, ci)
    suite = seen.pop("suite")
    assert set(seen.values()) == {"pass"}, seen
    # The warnings are still reported, in the testcases' system-out, not as failures.
    reported = warning_cases(suite)
    assert reported and all(case.find("failure") is None for case in reported)
    assert all("[warning] " in case.find("system-out").text for case in reported)


def test_fail_on_warning_flips_every_channel(capsys, ci) -> None:
    seen = channels(capsys, ci, "--fail-on", "warning")
    suite = seen.pop("suite")
    assert set(seen.values()) == {"fail"}, seen
    assert not warning_cases(suite)  # the same findings are failures now
    failures = [case.find("failure").get("type") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failures and int(suite.get("failures")) == len(failures)


def test_an_inconclusive_run_is_not_green_in_junit() -> None:
    """exit code 1 without a failing check (construct-failed waived, nothing verified)."""
    import json

    from bnconform.render import junit

    result = json.loads((Path(__file__).parent / "data" / "sample_result_clean.json").read_text())
    assert ET.fromstring(junit.render(result).split("\n", 1)[1]).get("failures") == "0"
    result["summary"].update(verdict="inconclusive", exit_code=1)
    suite = ET.fromstring(junit.render(result).split("\n", 1)[1])
    assert suite.get("failures") == "1" and int(suite.get("tests")) == len(result["checks"]) + 1
    (case,) = [case for case in suite.iter("testcase") if case.find("failure") is not None]
    assert case.get("name") == "verdict" and case.find("failure").get("type") == "inconclusive"
