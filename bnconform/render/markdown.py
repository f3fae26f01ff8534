"""Markdown report (GitHub flavoured): for PR comments and $GITHUB_STEP_SUMMARY.

All text from the result is escaped: `<`, `>` and `&` become entities (GitHub renders
inline HTML), and table cells additionally escape pipes and fold newlines, so user text
can neither inject markup nor break a table. Code blocks use a fence longer than any
backtick run inside them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tabulate import tabulate

from bnconform.render import common as c

_HEADINGS = {"error": "Errors", "warning": "Warnings", "info": "Info", "other": "Other"}


def render(result: Mapping[str, Any]) -> str:
    """The whole Markdown report; a clean run yields a short page."""
    parts = [_header(result), _fingerprint(result), _findings(result), _waived(result),
             _checks(result)]
    return "\n\n".join(p for p in parts if p).rstrip() + "\n"


def esc(value: Any) -> str:
    """Escape prose: HTML characters become entities, brackets are escaped, one line."""
    flat = c.one_line(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Brackets would let result text form links or images.
    return flat.replace("[", "\\[").replace("]", "\\]")


def cell(value: Any) -> str:
    """Escape a table cell: like `esc`, plus backslashes and pipes (GFM cell syntax)."""
    return esc(str(c.text(value)).replace("\\", "\\\\")).replace("|", "\\|")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub table whose every cell is escaped; numbers are not reformatted."""
    body = [[cell(v) for v in row] for row in rows]
    return tabulate(body, headers=[cell(h) for h in headers], tablefmt="github",
                    disable_numparse=True)


def code_block(code: Any, lang: str = "python") -> str:
    """A fenced block that cannot be closed early by backticks inside `code`."""
    body = c.text(code).rstrip("\n")
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


def _header(result: Mapping[str, Any]) -> str:
    fields = dict(c.header_fields(result))
    mark = "✅" if c.verdict(result) == "pass" else "❌"
    title = f"# {mark} bnconform: {esc(fields.pop('Verdict'))}: {esc(fields['Target'])}"
    meta = " · ".join(f"**{k}** {esc(v)}" for k, v in fields.items() if v and k != "Target")
    built = f"\n\n{esc(c.construction_line(result))}" if c.construction_line(result) else ""
    return f"{title}\n\n{meta}{built}\n\n{esc(c.count_line(result))}"


def _fingerprint(result: Mapping[str, Any]) -> str:
    rows = c.items(c.section(result, "fingerprint"), "rows")
    if not rows:
        return ""
    body = [[r.get("label") or r.get("key"), r.get("expected"), r.get("observed"),
             r.get("verdict")] for r in rows]
    sentence = esc(c.closest_spec_sentence(result))
    return "## Fingerprint vs spec\n\n" + table(
        ["property", "expected", "observed", "verdict"], body) + f"\n\n{sentence}"


def _findings(result: Mapping[str, Any]) -> str:
    groups = c.by_severity(c.active_findings(result))
    if not groups:
        return "## Findings\n\nNo findings."
    out = ["## Findings"]
    for severity, found in groups.items():
        out.append(f"### {_HEADINGS.get(severity, severity)} ({len(found)})")
        out.extend(_finding(f) for f in found)
    return "\n\n".join(out)


def _finding(f: Mapping[str, Any]) -> str:
    lines = [f"#### {esc(f.get('code'))}: {esc(f.get('message'))}", ""]
    lines += [f"- **Expected:** {esc(f.get('expected'))}",
              f"- **Observed:** {esc(f.get('observed'))}"]
    if f.get("device"):
        lines.append(f"- **Device:** {esc(f.get('device'))}")
    for label, key in (("Why it matters", "why"), ("How to fix", "hint")):
        if f.get(key):
            lines.append(f"- **{label}:** {esc(f.get(key))}")
    if c.text(f.get("repro")).strip():
        lines += ["", "Reproduce with:", "", code_block(f.get("repro"))]
    return "\n".join(lines)


def _waived(result: Mapping[str, Any]) -> str:
    waived = c.waived_findings(result)
    if not waived:
        return ""
    rows = [[f.get("severity"), f.get("code"), f.get("message")] for f in waived]
    return f"## Waived findings ({len(waived)})\n\n" + table(["severity", "code", "message"], rows)


def _checks(result: Mapping[str, Any]) -> str:
    checks = c.items(result, "checks")
    if not checks:
        return ""
    ordered = [ch for group in c.by_status(checks).values() for ch in group]
    rows = [[ch.get("status"), ch.get("id"), ch.get("area"), ch.get("reason")] for ch in ordered]
    return f"## Checks ({len(checks)})\n\n" + table(["status", "check", "area", "reason"], rows)
