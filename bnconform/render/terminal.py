"""The terminal summary: verdict line, findings with expected vs observed, counts.

Lines are fitted to `width` (a terminal's columns) with an ellipsis, or kept whole when
`width` is None (piped output: grep and logs get the full text). Colour is opt-in ANSI
styling of our own labels; control characters (ANSI escapes included) and bidi overrides in
result text are shown escaped (render/sanitize.py), so a class name or message cannot
rewrite the user's terminal.

verbosity: -1 the verdict line only; 0 findings and counts; 1 also every check with its
status (and the reason of a skip or block).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from bnconform.render import common as c

Segment = tuple[str, str]  # (text, style name); style "" is plain
Line = list[Segment]

STYLES = {
    "error": "\x1b[31;1m", "warning": "\x1b[33;1m", "info": "\x1b[36m",
    "pass": "\x1b[32;1m", "fail": "\x1b[31;1m", "dim": "\x1b[2m", "bold": "\x1b[1m",
    "failed": "\x1b[31m", "errored": "\x1b[31m", "blocked": "\x1b[33m", "skipped": "\x1b[33m", "passed": "\x1b[32m",
}
RESET = "\x1b[0m"
SEVERITY_WIDTH = len("warning")
STATUS_WIDTH = len("errored")


def render(result: Mapping[str, Any], *, width: int | None = 100, color: bool = False, verbosity: int = 0) -> str:
    """The summary as text ending in a newline; see the module docstring for the knobs."""
    lines = [_verdict_line(result)]
    if verbosity >= 0:
        if verbosity >= 1:
            lines += [[], *_check_lines(result)]
        findings = c.active_findings(result)
        if findings:
            lines += [[], *_finding_lines(findings)]
        lines.append([])
        for sentence in (c.count_line(result), *_notes(result, findings)):
            # Sentences wrap (a cut count line would hide numbers); table rows are cut instead.
            lines += [[(part, "")] for part in _wrap(sentence, width)]
    return "\n".join(_show(_fit(line, width), color) for line in lines) + "\n"


def _verdict_line(result: Mapping[str, Any]) -> Line:
    verdict = c.verdict(result)
    target = c.one_line(c.section(result, "target").get("text"))
    spec = c.one_line(c.section(result, "spec").get("name"))
    return [("bnconform ", "bold"), (verdict.upper(), verdict), (f": {target} vs spec {spec}", "")]


def _finding_lines(findings: list[Mapping[str, Any]]) -> list[Line]:
    # Root causes first; the findings a cause explains follow it, marked "└ " (diagnosis.py).
    codes = [c.nested_code(f.get("code"), c.is_consequence(f, findings)) for f in findings]
    code_width = max(len(code) for code in codes)
    indent = " " * (SEVERITY_WIDTH + code_width + 4)
    lines: list[Line] = []
    for f, code in zip(findings, codes, strict=True):
        severity = c.one_line(f.get("severity"))
        lines.append([(f"{severity:<{SEVERITY_WIDTH}}", severity), ("  ", ""),
                      (f"{code:<{code_width}}", "bold"), ("  ", ""),
                      (c.one_line(f.get("message")), "")])
        for label in ("expected", "observed"):
            value = c.one_line(f.get(label))
            if value:
                lines.append([(indent, ""), (f"{label} ", "dim"), (value, "")])
    return lines


def _check_lines(result: Mapping[str, Any]) -> list[Line]:
    checks = c.items(result, "checks")
    if not checks:
        return []
    code_width = max(len(c.one_line(ch.get("id"))) for ch in checks)
    lines: list[Line] = []
    for check in checks:
        status = c.one_line(check.get("status"))
        lines.append([(f"{status:<{STATUS_WIDTH}}", status), ("  ", ""),
                      (f"{c.one_line(check.get('id')):<{code_width}}", ""), ("  ", ""),
                      (_check_reason(check), "dim")])
    return lines


def _check_reason(check: Mapping[str, Any]) -> str:
    reason = c.one_line(check.get("reason"))
    if c.text(check.get("status")) == "failed" and not reason:
        # "error", or "warning eps-default" when the finding's code is not the check's own
        own = c.one_line(check.get("id"))
        return ", ".join(
            ("waived " if f.get("waived") else "") + c.one_line(f.get("severity"))
            + ("" if c.one_line(f.get("code")) == own else f" {c.one_line(f.get('code'))}")
            for f in c.items(check, "findings"))
    return reason


def _notes(result: Mapping[str, Any], findings: list[Mapping[str, Any]]) -> list[str]:
    """The closest shipped spec, and why findings below --fail-on leave the verdict alone."""
    notes = [line for line in (c.fix_first_line(result), c.domain_sentence(result)) if line]
    if c.section(c.section(result, "fingerprint"), "closest_spec"):
        notes.append(c.closest_spec_sentence(result))
    fail_on = c.one_line(c.section(result, "settings").get("fail_on")) or "error"
    if fail_on in c.SEVERITIES:
        below = [f for f in findings if c.severity_rank(f.get("severity")) > c.SEVERITIES.index(fail_on)]
        if below:
            notes.append(f"Findings below --fail-on {fail_on} are reported; they do not fail the run.")
    return notes


def _wrap(sentence: str, width: int | None) -> list[str]:
    return [sentence] if width is None else textwrap.wrap(sentence, width) or [""]


def _fit(line: Line, width: int | None) -> Line:
    """Cut the line to `width` columns with an ellipsis (None: keep it whole)."""
    if width is None or sum(len(text) for text, _ in line) <= width:
        return line
    fitted: Line = []
    room = width - 1
    for text, style in line:
        if len(text) >= room:
            fitted.append((text[:room].rstrip() + "…", style))
            break
        fitted.append((text, style))
        room -= len(text)
    return fitted


def _show(line: Line, color: bool) -> str:
    if not color:
        return "".join(text for text, _ in line).rstrip()
    return "".join(f"{STYLES[style]}{text}{RESET}" if style in STYLES and text.strip() else text
                   for text, style in line).rstrip()
