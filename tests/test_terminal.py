"""The terminal summary and its conventions: width, colour, verbosity, the progress line."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from bnconform import console, progress
from bnconform.live import CLEAR, ProgressLine, progress_line
from bnconform.render import common as c
from bnconform.render import terminal

DATA = Path(__file__).parent / "data"
LONG = "a message long enough to need cutting " * 6


def sample(name: str = "failing") -> dict[str, Any]:
    return json.loads((DATA / f"sample_result_{name}.json").read_text())


def with_long_message() -> dict[str, Any]:
    result = sample()
    result["findings"][0].update(message=LONG.strip(), expected="E" * 300, observed="O-value")
    return result


def test_lines_fit_the_width_on_a_terminal() -> None:
    for width in (60, 100, 140):
        text = terminal.render(with_long_message(), width=width)
        assert max(len(line) for line in text.splitlines()) <= width
        assert "…" in text
        # the counts wrap instead of being cut: no number is lost on a narrow terminal
        assert c.count_line(with_long_message()) in " ".join(text.split())


def test_full_text_when_piped() -> None:
    text = terminal.render(with_long_message(), width=None)
    assert LONG.strip() in text and "E" * 300 in text and "…" not in text


def test_each_finding_shows_expected_and_observed() -> None:
    result = sample()
    text = terminal.render(result, width=None)
    lines = text.splitlines()
    for finding in (f for f in result["findings"] if not f["waived"]):
        at = next(i for i, line in enumerate(lines) if f" {finding['code']} " in line)
        assert lines[at + 1].split() == ["expected", *finding["expected"].split()]
        assert lines[at + 2].split() == ["observed", *finding["observed"].split()]


def test_quiet_is_the_verdict_line_only() -> None:
    assert terminal.render(sample(), verbosity=-1) == (
        "bnconform FAIL: bnconform.examples.tutorial:TutorialBatchNorm2d vs spec pytorch\n")


def test_verbose_lists_every_check_with_the_reason_of_skips_and_blocks() -> None:
    result = sample()
    lines = terminal.render(result, width=None, verbosity=1).splitlines()
    for check in result["checks"]:
        (line,) = [row for row in lines if row.split()[:2] == [check["status"], check["id"]]]
        if check["status"] in ("skipped", "blocked"):
            assert check["reason"] and line.endswith(check["reason"])
    assert ["failed", "state-dict-keys", "waived", "warning"] in [line.split() for line in lines]
    assert ["failed", "momentum-inverted", "error"] in [line.split() for line in lines]
    assert len(terminal.render(result, width=None, verbosity=0).splitlines()) < len(lines)


def test_colour_only_when_asked_and_never_from_result_text() -> None:
    result = sample()
    result["findings"][0]["message"] = "\x1b[2J wipe"
    plain = terminal.render(result)
    coloured = terminal.render(result, color=True)
    assert "\x1b" not in plain
    assert "\x1b[31;1mFAIL\x1b[0m" in coloured and "\x1b[31;1merror  \x1b[0m" in coloured
    assert "\x1b[2J" not in coloured


def test_findings_below_fail_on_are_explained() -> None:
    result = sample("clean")
    result["findings"] = [{"code": "eps-default", "severity": "warning", "message": "m", "waived": False}]
    assert "below --fail-on error are reported; they do not fail the run" in terminal.render(result)


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("env", "flag", "tty", "expected"),
    [
        ({}, "auto", True, True),
        ({}, "auto", False, False),
        ({"TERM": "dumb"}, "auto", True, False),
        ({"NO_COLOR": "1"}, "auto", True, False),
        ({"NO_COLOR": ""}, "auto", True, True),  # empty values are ignored (pytest #11712)
        ({"FORCE_COLOR": "1"}, "auto", False, True),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, "auto", False, False),
        ({"PY_COLORS": "1", "NO_COLOR": "1"}, "auto", False, True),
        ({"PY_COLORS": "0", "FORCE_COLOR": "1"}, "auto", True, False),
        ({"NO_COLOR": "1"}, "always", False, True),
        ({"FORCE_COLOR": "1"}, "never", True, False),
    ],
)
def test_colour_follows_pytests_order(monkeypatch, env, flag, tty, expected) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "PY_COLORS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert console.use_color(FakeTTY() if tty else io.StringIO(), flag) is expected


def test_width_is_the_terminals_or_none_when_piped(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "123")
    assert console.width(FakeTTY()) == 123
    assert console.width(io.StringIO()) is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_line_names_the_check_and_a_call_waiting_on_its_timeout() -> None:
    clock, out = Clock(), FakeTTY()
    line = ProgressLine(out, lambda: 100, clock)
    line("check", code="output-mismatch")
    line.draw(delay_s=1.0)
    assert out.getvalue() == ""  # a run under a second shows nothing
    clock.now = 1.5
    line.draw(delay_s=1.0)
    assert out.getvalue() == CLEAR + "bnconform: checking output-mismatch"
    line("call", what="train-mode forward", timeout_s=10.0)
    clock.now = 4.6
    assert line.text() == ("bnconform: checking output-mismatch - waiting on train-mode forward "
                           "(3 s of the 10 s timeout)")
    clock.now = 12.0
    assert line.text() == ("bnconform: checking output-mismatch - train-mode forward passed its 10 s timeout; "
                           "stopping it")
    clock.now = 4.6
    line("call", what="inner", timeout_s=10.0)
    line("call-done")
    assert "waiting on train-mode forward" in line.text()  # nested calls: the outer one is still waiting
    line("call-done")
    assert line.text() == "bnconform: checking output-mismatch"
    line.clear()
    assert out.getvalue().endswith(CLEAR)


def test_progress_line_fits_the_terminal() -> None:
    line = ProgressLine(FakeTTY(), lambda: 30, Clock())
    line("check", code="a-very-long-check-code-indeed")
    assert len(line.text()) <= 29 and line.text().endswith("…")


def test_progress_line_listens_only_inside_its_block_and_clears_itself() -> None:
    out = FakeTTY()
    with progress_line(out, lambda: 80, delay_s=0.0, interval_s=0.01) as line:
        progress.emit("check", code="state-dict")
        while not line.shown:
            pass
    assert line.check == "state-dict"
    assert "bnconform: checking state-dict" in out.getvalue() and out.getvalue().endswith(CLEAR)
    progress.emit("check", code="later")
    assert line.check == "state-dict"


def test_a_new_check_forgets_a_call_that_never_finished() -> None:
    """A worker killed on its timeout never sends call-done; the next check must not show it."""
    clock = Clock()
    line = ProgressLine(FakeTTY(), lambda: 100, clock)
    line("check", code="num-batches-tracked")
    line("call", what="eval-mode forward", timeout_s=6.0)
    clock.now = 7.0
    line("check", code="state-dict")
    assert line.text() == "bnconform: checking state-dict"
