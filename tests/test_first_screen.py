"""The first screen of every format: verdict, the root cause to fix first with its fix, the
closest shipped convention and the discovered input domain (tolerated when absent)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from bnconform.render import common, html, junit, markdown, terminal

DATA = Path(__file__).parent / "data"
DOMAIN = {"ranks": [2], "rejected": {"3": "ValueError", "4": "ValueError", "5": "ValueError"},
          "probe_rank": 2, "batch": {"probe": 6, "constraint": "training needs N divisible by 2", "rejected": {}},
          "channels": {"probe": 5, "honoured": True, "rejected": {}}}
SENTENCE = "Accepts ranks [2] (rejects 3, 4, 5); training needs N divisible by 2; probed at rank 2 with N=6, C=5."


def sample(domain: Any = DOMAIN) -> dict[str, Any]:
    result = json.loads((DATA / "sample_result_failing.json").read_text())
    if domain is not None:
        result["domain"] = domain
    return result


def test_domain_sentence() -> None:
    assert common.domain_sentence(sample()) == SENTENCE
    assert common.domain_sentence(sample(None)) == ""
    assert common.domain_sentence(sample({"ranks": [2, 3, 4, 5]})) == "Accepts ranks [2, 3, 4, 5]."
    odd = {"ranks": "x", "channels": {"probe": 5, "honoured": False}, "probe_rank": 4}
    assert common.domain_sentence(sample(odd)) == (
        "Probed at rank 4 with C=5; the channel count is not honoured (the class ignores num_features).")


def first_screen(fmt: str, result: dict[str, Any]) -> str:
    if fmt == "terminal":
        return terminal.render(result, width=None)
    if fmt == "markdown":
        return markdown.render(result).split("\n## ", 1)[0]
    text = html.render(result)
    return text[text.index('<header'):text.index("</header>")]


@pytest.mark.parametrize("fmt", ["terminal", "markdown", "html"])
def test_first_screen_has_verdict_fix_first_convention_and_domain(fmt: str) -> None:
    screen = first_screen(fmt, sample())
    assert "FAIL" in screen
    assert "running-stats-shape" in screen  # the first root cause
    assert "Register running_mean/running_var as torch.zeros" in screen  # and its fix
    assert "Closest shipped convention: behaves like the keras spec" in screen
    expected = SENTENCE.replace("[", "\\[").replace("]", "\\]") if fmt == "markdown" else SENTENCE
    assert expected in screen


@pytest.mark.parametrize("fmt", ["terminal", "markdown", "html"])
def test_old_results_without_domain_render(fmt: str) -> None:
    screen = first_screen(fmt, sample(None))
    assert "Accepts ranks" not in screen and "running-stats-shape" in screen


def test_junit_carries_the_domain_as_a_property() -> None:
    props = {p.get("name"): p.get("value") for p in ET.fromstring(junit.render(sample())).iter("property")}
    assert props["domain"] == SENTENCE
    props = {p.get("name"): p.get("value") for p in ET.fromstring(junit.render(sample(None))).iter("property")}
    assert props["domain"] == ""
