"""Text from user code is inert in every format: control characters, ANSI escapes and bidi
overrides are shown escaped, never passed through and never silently dropped."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnconform.render import html, junit, markdown, terminal
from bnconform.render.sanitize import inert, is_inert

DATA = Path(__file__).parent / "data"
# A terminal clear + colour, a CSI in its one-byte C1 form, a right-to-left override and
# isolate (Trojan Source), NUL, DEL, a bell and a lone surrogate.
HOSTILE = "ok\x1b[2J\x1b[31mred\x9b0m \u202eevil\u202c \u2066iso\u2069 nul\x00 del\x7f bell\x07 \ud800"
RAW = ("\x1b", "\x9b", "\u202e", "\u202c", "\u2066", "\u2069", "\x00", "\x7f", "\x07", "\ud800")
ESCAPED = (r"\x1b", r"\x9b", r"\u202e", r"\u202c", r"\u2066", r"\u2069", r"\x00", r"\x7f", r"\x07",
           r"\ud800")


def test_each_unsafe_character_is_shown_as_its_escape() -> None:
    shown = inert(HOSTILE)
    for raw, escaped in zip(RAW, ESCAPED, strict=True):
        assert raw not in shown and escaped in shown
    assert shown.startswith(r"ok\x1b[2J\x1b[31mred\x9b0m \u202eevil")


def test_layout_and_ordinary_unicode_are_kept() -> None:
    text = "line one\n\tindented é 日本 ✅ C:\\path μ=0.1"
    assert inert(text) == text and is_inert(text)


@settings(deadline=None, database=None)
@given(st.text())
def test_inert_output_is_always_inert_and_idempotent(text: str) -> None:
    shown = inert(text)
    assert is_inert(shown)
    assert inert(shown) == shown
    assert len(shown) >= len(text)


@settings(deadline=None, database=None)
@given(st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp"))))
def test_printable_text_is_unchanged(text: str) -> None:
    assert inert(text) == text


def hostile_result() -> dict[str, Any]:
    """The failing sample with user-derived text made hostile: the target name, its docstring,
    a finding's message (exception text), observed value (a repr) and repro, a check reason."""
    result = json.loads((DATA / "sample_result_failing.json").read_text())
    result["target"]["text"] = "evil:" + HOSTILE
    result["target"]["doc"] = HOSTILE
    for finding in result["findings"] + [f for ch in result["checks"] for f in ch["findings"]]:
        if finding["code"] == "momentum-inverted":
            finding["message"] = "raised RuntimeError: " + HOSTILE
            finding["observed"] = HOSTILE
            finding["repro"] = "print(1)  # " + HOSTILE
    result["checks"][7]["reason"] = HOSTILE
    return result


def assert_inert(text: str, escaped: tuple[str, ...] = ESCAPED) -> None:
    for raw in RAW:
        assert raw not in text, repr(raw)
    for shown in escaped:
        assert shown in text, shown


@pytest.mark.parametrize("render", [terminal.render, markdown.render, html.render],
                         ids=["terminal", "markdown", "html"])
def test_every_text_format_shows_hostile_text_escaped(render: Any) -> None:
    text = render(hostile_result())
    # The terminal truncates long cells: the escapes before the cut are enough there.
    assert_inert(text, ESCAPED[:6] if render is terminal.render else ESCAPED)


def test_junit_shows_hostile_text_escaped_and_parses() -> None:
    text = junit.render(hostile_result())
    assert_inert(text)
    root = ET.fromstring(text)
    failure = root.find("testcase[@name='momentum-inverted']/failure")
    assert failure is not None and r"\u202eevil" in (failure.get("message") or "")


def test_markdown_table_cells_escape_too() -> None:
    result = hostile_result()
    result["fingerprint"]["rows"][0]["observed"] = HOSTILE
    text = markdown.render(result)
    row = next(line for line in text.splitlines() if line.startswith("|") and "evil" in line)
    # In a GFM cell the backslash is itself escaped, so the cell *displays* \u202e.
    assert "\\\\u202eevil" in row and "\u202e" not in row


def test_console_warning_and_progress_line_are_inert(capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import itertools

    from bnconform import console, live

    console.warn("import printed " + HOSTILE)
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err and r"\u202eevil" in err
    line = live.ProgressLine(io.StringIO(), lambda: 400, clock=itertools.count(0.0, 5.0).__next__)
    line("check", code="forward-failed")
    line("call", what="constructing Evil\x1b[2J\u202e()", timeout_s=10.0)
    shown = line.text()
    assert "waiting on constructing Evil" in shown
    assert "\x1b" not in shown and "\u202e" not in shown and r"Evil\x1b[2J\u202e()" in shown


# -- inert / is_inert, character by character ---------------------------------------------------

# Every edge of every unsafe range, with the exact escape it is shown as: \xNN up to U+00FF
# (two lower-case hex digits), \uNNNN above (four).
UNSAFE_EDGES = (
    ("\x00", r"\x00"), ("\x01", r"\x01"), ("\x08", r"\x08"), ("\x0b", r"\x0b"), ("\x0c", r"\x0c"),
    ("\x0d", r"\x0d"), ("\x1b", r"\x1b"), ("\x1f", r"\x1f"), ("\x7f", r"\x7f"), ("\x80", r"\x80"),
    ("\x85", r"\x85"), ("\x9b", r"\x9b"), ("\x9f", r"\x9f"), ("\u061c", r"\u061c"), ("\u200e", r"\u200e"),
    ("\u200f", r"\u200f"), ("\u202a", r"\u202a"), ("\u202e", r"\u202e"), ("\u2066", r"\u2066"),
    ("\u2069", r"\u2069"), ("\u2028", r"\u2028"), ("\u2029", r"\u2029"), ("\ud800", r"\ud800"),
    ("\udbff", r"\udbff"), ("\udc00", r"\udc00"), ("\udfff", r"\udfff"), ("\ufffe", r"\ufffe"),
    ("\uffff", r"\uffff"),
)
# Their safe neighbours (and layout): kept as they are.
SAFE_NEIGHBOURS = ("\t", "\n", " ", "~", "\xa0", "\xad", "\xff", "\u0100", "\u061b", "\u061d", "\u200d",
                   "\u2010", "\u2027", "\u202f", "\u2065", "\u206a", "\ud7ff", "\ue000", "\ufffd",
                   "\U00010000", "\U0001f600", "\U0010ffff")


@pytest.mark.parametrize(("raw", "escaped"), UNSAFE_EDGES, ids=[e for _, e in UNSAFE_EDGES])
def test_each_unsafe_edge_is_escaped_exactly(raw: str, escaped: str) -> None:
    assert inert(raw) == escaped
    assert inert("a" + raw + "b") == "a" + escaped + "b"
    assert not is_inert(raw) and not is_inert("safe text " + raw) and not is_inert(raw + "safe text")
    assert is_inert(inert(raw))


@pytest.mark.parametrize("char", SAFE_NEIGHBOURS, ids=[f"U+{ord(c):04X}" for c in SAFE_NEIGHBOURS])
def test_each_safe_neighbour_is_kept(char: str) -> None:
    assert inert(char) == char and inert("x" + char * 2) == "x" + char * 2
    assert is_inert(char)


def test_every_unsafe_character_in_a_string_is_escaped_in_place() -> None:
    text = "\x1b[31mred\x1b[0m \u202eevil\u202c\x00" + "\u2066" * 2 + "end\x7f"
    assert inert(text) == r"\x1b[31mred\x1b[0m \u202eevil\u202c\x00\u2066\u2066end\x7f"
    assert inert("") == "" and is_inert("")
    assert is_inert(r"\x1b already escaped \u202e")
    assert inert(r"\x1b") == r"\x1b"  # an escape is text, left as it is
