"""Hostile text anywhere in a result never becomes markup, breaks a table or the XML."""

from __future__ import annotations

import html as html_lib
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from junitparser import JUnitXml

from bnconform.render import html, junit, markdown, terminal
from bnconform.render import json as json_render

DATA = Path(__file__).parent / "data"
PAYLOAD = '<script>alert("x")</script>"quotes\' & <img src=x onerror=y> | pipe\nline\x1b[31m'
# Fields the renderers use as structure; kept valid in the first test so every section
# renders, and made hostile too in the second.
STRUCTURAL = {"schema", "severity", "status", "verdict"}


def hostile(value: Any, keep: set[str], key: str = "") -> Any:
    """`value` with PAYLOAD appended to every string (and every mapping key's string value)."""
    if isinstance(value, dict):
        return {k: hostile(v, keep, k) for k, v in value.items()}
    if isinstance(value, list):
        return [hostile(v, keep, key) for v in value]
    if isinstance(value, str) and key not in keep:
        return value + PAYLOAD
    return value


def evil(keep: set[str] = STRUCTURAL) -> dict[str, Any]:
    result = hostile(json.loads((DATA / "sample_result_failing.json").read_text()), keep)
    result["schema"] = "bnconform.result/1"
    # Numbers and nulls get hostile text too, where a renderer shows them.
    result["target"]["file"] = PAYLOAD
    result["environment"]["cuda"] = PAYLOAD
    result["settings"]["seed"] = PAYLOAD
    result["plots"]["running_stats_trace"]["channel"] = PAYLOAD
    result["target"]["parameters"][PAYLOAD] = PAYLOAD
    return result


def assert_html_safe(text: str) -> None:
    assert "<script>alert" not in text and "<img" not in text
    assert text.count("<script") == 1  # only the report's own script
    assert "onerror=y>" not in text and "\x1b" not in text
    assert html_lib.escape('<script>alert("x")</script>"quotes\'', quote=True) in text
    assert "&lt;img src=x onerror=y&gt;" in text


def test_every_text_field_is_hostile() -> None:
    result = evil()
    for path in (["target", "text"], ["target", "qualname"], ["target", "doc"],
                 ["spec", "description"], ["environment", "torch"], ["findings", 0, "repro"],
                 ["checks", 7, "reason"], ["fingerprint", "rows", 0, "observed"]):
        node: Any = result
        for part in path:
            node = node[part]
        assert PAYLOAD in node, path


@pytest.mark.parametrize("keep", [STRUCTURAL, {"schema"}], ids=["valid-structure", "all"])
def test_html_escapes_everything(keep: set[str]) -> None:
    text = html.render(evil(keep))
    assert_html_safe(text)
    # The hostile plot label was drawn as escaped SVG text.
    svg = text[text.index("<svg"):text.index("</svg>")]
    assert "&lt;script&gt;" in svg and "<script" not in svg


@pytest.mark.parametrize("keep", [STRUCTURAL, {"schema"}], ids=["valid-structure", "all"])
def test_markdown_tables_survive_hostile_cells(keep: set[str]) -> None:
    text = markdown.render(evil(keep))
    assert "\x1b" not in text
    # Code blocks show the repro verbatim (GitHub renders them literally); all else is escaped.
    prose = re.sub(r"^(`{3,})python\n.*?^\1$", "", text, flags=re.M | re.S)
    assert "<script" not in prose and "<img" not in prose
    assert "&lt;script&gt;alert" in prose
    tables = 0
    for block in re.findall(r"(?:^\|.*\n)+", text, flags=re.M):
        rows = block.splitlines()
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in rows}
        assert len(widths) == 1, rows  # a stray pipe or newline would change a row's width
        tables += 1
    assert tables >= 3  # fingerprint, waived, checks
    # Outside code blocks, hostile text stays on its line (no heading/list breakout).
    assert "\nline" not in prose


def test_junit_parses_and_validates() -> None:
    text = junit.render(evil())
    root = ET.fromstring(text)
    assert root.tag == "testsuite"
    failure = root.find(".//failure")
    assert failure is not None and PAYLOAD.replace("\n", " ").replace("\x1b", "")[:20] in (
        failure.get("message") or "")
    xmlschema.XMLSchema(str(DATA / "junit-10.xsd")).validate(text)


def test_junitparser_reads_hostile_report(tmp_path: Path) -> None:
    path = tmp_path / "r.xml"
    path.write_text(junit.render(evil({"schema"})), encoding="utf-8")
    (suite,) = list(JUnitXml.fromfile(str(path)))
    # One testcase per check, plus the verdict testcase when the exit code fails with no failing
    # check behind it (render/junit.py: an inconclusive or otherwise unexplained failing verdict).
    names = [case.name for case in suite]
    assert len(evil({"schema"})["checks"]) == 34 and suite.tests == len(names)
    assert len([n for n in names if n != "verdict"]) == 34


def test_terminal_and_json_survive() -> None:
    result = evil()
    assert "\x1b" not in terminal.render(result)
    assert json.loads(json_render.render(result)) == result
