"""End to end: a real run of a hostile class through every renderer.

The class's docstring and exception messages carry markup; no renderer may let it through
unescaped, the JUnit file must load in a real JUnit parser, and the JSON must re-render.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from junitparser import JUnitXml

from bnconform.api import run_check
from bnconform.render import write_reports

HOSTILE = "tests/fixtures/hostile_bn.py:BatchNorm"


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    result = run_check(HOSTILE)
    return write_reports(result, tmp_path_factory.mktemp("reports"), ["json", "md", "html", "junit"])


def test_hostile_text_reaches_the_result(written: dict[str, Path]) -> None:
    result = json.loads(written["json"].read_text())
    codes = {f["code"] for f in result["findings"]}
    assert "momentum-inverted" in codes
    assert "forward-failed" in codes  # the eval forward raises
    assert "<script>" in result["target"]["doc"]
    assert any("<script>" in f["message"] for f in result["findings"])


def test_html_escapes_user_text(written: dict[str, Path]) -> None:
    html = written["html"].read_text()
    assert "<script>alert" not in html
    assert "<img" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&quot;class docstring&quot;)" in html
    assert "&lt;script&gt;alert(&quot;exception&quot;)" in html
    assert html.count("<script") == 1  # the report's own filter/copy script, nothing else


def test_junit_loads_in_a_junit_parser(written: dict[str, Path]) -> None:
    result = json.loads(written["json"].read_text())
    xml = JUnitXml.fromfile(str(written["junit"]))
    cases = {case.name: case for suite in xml for case in suite}
    assert set(cases) == {c["id"] for c in result["checks"]}
    failure = cases["momentum-inverted"].result[0]
    assert type(failure).__name__ == "Failure" and failure.type == "momentum-inverted"
    # A failed check whose findings are all consequences is reported under its cause (skipped).
    failed = [c for c in result["checks"] if c["status"] == "failed"]
    own = [c for c in failed if not all(f.get("caused_by") for f in c["findings"])]
    assert xml.failures == len(own) < len(failed)


def test_saved_json_renders_again_without_the_user_module(written: dict[str, Path], tmp_path: Path) -> None:
    from bnconform.render.json import load

    again = write_reports(load(written["json"]), tmp_path, ["md", "html", "junit"])
    assert again["html"].read_text().count("<script") == 1
    assert "momentum-inverted" in again["md"].read_text()
