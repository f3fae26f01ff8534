"""HTML report structure: sections, plots, CSP, copy buttons, no-JS reading, sizes."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from bnconform.render import html, markdown
from bnconform.render.html_assets import CSS, JS, csp_hash

DATA = Path(__file__).parent / "data"


def sample(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"sample_result_{name}.json").read_text())


class Doc(HTMLParser):
    """Collects start tags (name, attrs) and the text inside <script>/<style>/elements by id."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self.by_id: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open.append((tag, dict(attrs).get("id")))
        if tag in self.raw:
            self.raw[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1][0] in self.raw:
            self.raw[self._open[-1][0]][-1] += data
        for _tag, ident in self._open:
            if ident:
                self.by_id[ident] = self.by_id.get(ident, "") + data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag
                and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def with_class(self, tag: str, cls: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and cls in (a.get("class") or "").split()]


def test_failing_report_structure() -> None:
    result = sample("failing")
    doc = Doc(html.render(result))
    assert doc.by_id["verdict"] == "FAIL"
    assert len(doc.find("svg")) == 2  # running-stats trace and output comparison
    codes = {a.get("data-severity") for a in doc.with_class("article", "finding")}
    assert codes == {"error", "warning"}
    assert len(doc.with_class("article", "finding")) == 4
    text = " ".join(doc.by_id.values())
    for f in result["findings"]:
        assert f["code"] in text
    fingerprint = doc.by_id["fingerprint"]
    assert "expected" in fingerprint and "observed" in fingerprint and "verdict" in fingerprint
    assert ("Closest shipped convention: behaves like the keras spec except running-var-estimator."
            in fingerprint)
    assert len(doc.with_class("table", "fingerprint")) == 1
    assert len(doc.with_class("button", "copy")) == 4
    for button in doc.with_class("button", "copy"):
        assert button["data-copy"] in doc.by_id and "hidden" in button  # JS shows it
    assert "blocked by running-stats-shape (failed)" in doc.by_id["checks"]
    assert "state-dict-keys" in doc.by_id["waived"]
    header = doc.by_id["summary"]
    assert "3 errors, 1 warning" in header and "Closest shipped convention" in header
    # The first screen names the root cause to fix first and its fix.
    assert "Fix first: running-stats-shape" in " ".join(doc.by_id["fix-first"].split())
    assert "How to fix: Register running_mean" in doc.by_id["fix-first"]
    run = doc.by_id["run"]
    for key in ("Spec", "pytorch", "Devices", "cpu", "Seed", "bnconform", "0.1.0",
                "torch", "2.13.0", "Date", "2026-11-26T10:00:00+00:00"):
        assert key in run
    for key in ("python", "3.11.7", "platform", "setting seed"):
        assert key in doc.by_id["environment"]


def test_findings_come_before_fingerprint_and_metadata() -> None:
    text = html.render(sample("failing"))
    order = [text.index(f'id="{ident}"') for ident in
             ("summary", "fix-first", "findings", "fingerprint", "checks", "run", "environment")]
    assert order == sorted(order)
    assert text.index('id="finding-1"') < text.index('id="fingerprint"')


def test_csp_allows_exactly_the_inline_blocks() -> None:
    doc = Doc(html.render(sample("failing")))
    (meta,) = doc.find("meta", http_equiv="Content-Security-Policy")
    policy = meta["content"] or ""
    assert "default-src 'none'" in policy
    assert f"script-src {csp_hash(JS)}" in policy and f"style-src {csp_hash(CSS)}" in policy
    assert "unsafe-inline" not in policy and "http" not in policy
    assert doc.raw["script"] == [JS] and doc.raw["style"] == [CSS]
    assert all("src" not in attrs for tag, attrs in doc.tags if tag == "script")


def test_self_contained_and_readable_without_js() -> None:
    text = html.render(sample("failing"))
    doc = Doc(text)
    for tag, attrs in doc.tags:
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not value.startswith(("http", "//")), (tag, attrs)
        assert "style" not in attrs, (tag, attrs)  # inline styles would need 'unsafe-inline'
    (nav,) = doc.find("nav", id="filters")
    assert "hidden" in nav
    groups = {a["data-status"]: a for a in doc.with_class("details", "check-group")}
    assert "open" not in groups["passed"] and "open" in groups["failed"]
    assert "open" in groups["blocked"]
    assert "<style" not in text.split("<body>", 1)[1]  # matplotlib's <style> removed


def test_sizes() -> None:
    many = html.render(sample("many"))
    clean = html.render(sample("clean"))
    assert len(many.encode()) < 1_000_000
    assert len(clean.encode()) < 150_000
    assert len(markdown.render(sample("clean")).encode()) < 8_000
    assert len(Doc(many).with_class("article", "finding")) == 29


def test_clean_report() -> None:
    doc = Doc(html.render(sample("clean")))
    assert doc.by_id["verdict"] == "PASS"
    assert len(doc.find("svg")) == 1  # output_comparison is null
    assert not doc.with_class("article", "finding")
    assert "No findings" in doc.by_id["findings"]


def test_missing_plots_and_odd_values_do_not_crash() -> None:
    result = sample("failing")
    result["plots"] = {"running_stats_trace": {"steps": ["nan", 1, 2],
                                               "implementation": {"mean": [1, "x", 3]}},
                       "output_comparison": {"expected": ["nan"], "observed": [1]}}
    result["summary"].pop("counts")
    doc = Doc(html.render(result))
    assert len(doc.find("svg")) == 1
    del result["plots"]
    assert not Doc(html.render(result)).find("svg")


def test_momentum_plot_keeps_the_followed_hypothesis_visible_with_integer_steps() -> None:
    import re

    from bnconform.render import plots

    same = {"mean": [0.0, 0.9, 0.99], "var": [1.0, 1.0, 1.0]}
    trace = {"steps": [0, 1, 2], "implementation": same, "inverted": same,
             "spec": {"mean": [0.0, 0.1, 0.19], "var": [1.0, 1.0, 1.0]}}
    svg = plots.running_stats_svg(trace, "tr")
    assert svg is not None
    ticks = re.findall(r'<g id="tr-xtick_\d+">.*?<text[^>]*>([^<]*)</text>', svg, flags=re.S)
    assert ticks and all(re.fullmatch(r"[−-]?\d+", t) for t in ticks), ticks  # no 0.5 steps
    # Each series has its own dash pattern, so the hypothesis under the implementation shows.
    dashes = set(re.findall(r'stroke-dasharray="([^"]+)"', svg))
    assert len(dashes) >= 2
    for label in ("spec", "inverted-momentum hypothesis", "implementation"):
        assert f">{label}<" in svg


def footer(page: str) -> str:
    return page[page.index("<footer>"):page.index("</footer>")]


def test_footer_names_the_tool_and_the_duration_only_when_known() -> None:
    result = sample("failing")
    result["summary"]["duration_s"] = 1.234
    assert " in 1.23 s from schema" in footer(html.render(result))
    del result["summary"]["duration_s"]
    del result["tool"]["name"]
    shown = footer(html.render(result))
    assert shown.startswith("<footer>Generated by bnconform "), shown
    assert " s from schema" not in shown and "None" not in shown


def test_the_title_shows_the_target_cut_at_80_characters() -> None:
    result = sample("failing")
    result["target"]["text"] = "x" * 79 + "yz"
    title = html.render(result).split("<title>")[1].split("</title>")[0]
    assert title.endswith(": " + "x" * 79 + "…"), title
    result["target"]["text"] = "x" * 80
    title = html.render(result).split("<title>")[1].split("</title>")[0]
    assert title.endswith(": " + "x" * 80), title
