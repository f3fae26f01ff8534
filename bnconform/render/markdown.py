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

from bnconform.distributed.report import markdown as distributed_section
from bnconform.render import common as c


def render(result: Mapping[str, Any]) -> str:
    """The whole Markdown report; a clean run yields a short page."""
    # First screen: verdict, the root cause to fix first and its fix; run metadata last.
    parts = [_header(result), _findings(result), _fingerprint(result), _waived(result),
             _checks(result), distributed_section(result), _run(result)]
    return "\n\n".join(p for p in parts if p).rstrip() + "\n"


def esc(value: Any) -> str:
    """Escape prose: HTML characters become entities, brackets are escaped, one line."""
    flat = c.one_line(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Brackets would let result text form links or images.
    return flat.replace("[", "\\[").replace("]", "\\]")


def cell(value: Any) -> str:
    """Escape a table cell: like `esc`, plus backslashes and pipes (GFM cell syntax)."""
    return esc(str(c.text(value)).replace("\\", "\\\\")).replace("|", "\\|")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], raw: frozenset[int] | set[int] = frozenset()) -> str:
    """A GitHub table whose every cell is escaped (columns in `raw` hold our own marks, not
    result text); numbers are not reformatted; a `Bold` cell is wrapped in ** **."""
    body = [[v if i in raw else _styled(v) for i, v in enumerate(row)] for row in rows]
    return tabulate(body, headers=[cell(h) for h in headers], tablefmt="github",
                    disable_numparse=True)


def _styled(value: Any) -> str:
    text = cell(value)
    return f"**{text}**" if isinstance(value, Bold) and text else text


def code_block(code: Any, lang: str = "python") -> str:
    """A fenced block that cannot be closed early by backticks inside `code`."""
    body = c.text(code).rstrip("\n")
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


def _header(result: Mapping[str, Any]) -> str:
    mark = "✅" if c.verdict(result) == "pass" else "❌"
    target = c.section(result, "target").get("text")
    title = f"# {mark} bnconform: {esc(c.verdict(result).upper())}: {esc(target)}"
    lines = [title, _fix_first(result), esc(c.closest_spec_sentence(result)),
             esc(c.domain_sentence(result)), esc(c.count_line(result))]
    return "\n\n".join(line for line in lines if line)


def _fix_first(result: Mapping[str, Any]) -> str:
    groups = c.grouped(result)
    if not groups:
        return ""
    root, consequences = groups[0]
    lines = [f"> **Fix first:** **{esc(root.get('code'))}**: {esc(root.get('message'))}"]
    if c.text(root.get("hint")).strip():
        lines.append(f"> **How to fix:** {esc(root.get('hint'))}")
    also = c.consequence_line(consequences)
    if also:
        lines.append(f"> {esc(also[:1].upper() + also[1:])}.")
    return ">\n".join(line + "\n" for line in lines).rstrip("\n")


def _run(result: Mapping[str, Any]) -> str:
    fields = [(k, v) for k, v in c.header_fields(result) if k not in ("Verdict", "Target") and v]
    meta = " · ".join(f"**{k}** {esc(v)}" for k, v in fields)
    built = c.construction_line(result)
    return "## Run\n\n" + meta + (f"\n\n{esc(built)}" if built else "")


def _fingerprint(result: Mapping[str, Any]) -> str:
    """The fingerprint table; rows that differ from the spec are marked and bold."""
    rows = c.items(c.section(result, "fingerprint"), "rows")
    if not rows:
        return ""
    body = [_fingerprint_row(r) for r in rows]
    sentence = esc(c.closest_spec_sentence(result))
    note = esc(c.fingerprint_note(rows))
    return "## Fingerprint vs spec\n\n" + note + "\n\n" + table(
        ["", "property", "expected", "observed", "verdict"], body, raw={0}) + f"\n\n{sentence}"


def _fingerprint_row(row: Mapping[str, Any]) -> list[Any]:
    label = row.get("label") or row.get("key")
    if c.text(row.get("verdict")) != "differs":
        return ["", label, row.get("expected"), row.get("observed"), row.get("verdict")]
    return ["❌", Bold(label), row.get("expected"), Bold(row.get("observed")), Bold("differs")]


class Bold(str):
    """A table cell shown in bold (the text is still escaped)."""


def _findings(result: Mapping[str, Any]) -> str:
    """Root causes in report order, each followed by the findings it explains."""
    groups = c.grouped(result)
    if not groups:
        return "## Findings\n\nNo findings."
    total = sum(1 + len(consequences) for _, consequences in groups)
    out = [f"## Findings ({total})"]
    for number, (root, consequences) in enumerate(groups, 1):
        out.append(_finding(root, number))
        if consequences:
            out.append(_consequences(root, consequences))
    return "\n\n".join(out)


def _finding(f: Mapping[str, Any], number: int) -> str:
    severity = c.one_line(f.get("severity"))
    lines = [f"### {number}. {esc(f.get('code'))} ({esc(severity)}): {esc(f.get('message'))}", ""]
    lines += [f"- **Expected:** {esc(f.get('expected'))}",
              f"- **Observed:** {esc(f.get('observed'))}"]
    if f.get("device"):
        lines.append(f"- **Device:** {esc(f.get('device'))}")
    impact = _impact(f)
    if impact:
        lines.append(f"- **Impact:** {esc(impact)}")
    for label, key in (("Why it matters", "why"), ("How to fix", "hint")):
        if f.get(key):
            lines.append(f"- **{label}:** {esc(f.get(key))}")
    if c.text(f.get("repro")).strip():
        lines += ["", "Reproduce with:", "", code_block(f.get("repro"))]
    return "\n".join(lines)


def _impact(f: Mapping[str, Any]) -> str:
    details = f.get("details")
    value = details.get("impact") if isinstance(details, Mapping) else None
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    return str(details.get("impact_text") or f"relative output error {value:.3g}")


def _consequences(root: Mapping[str, Any], consequences: Sequence[Mapping[str, Any]]) -> str:
    """The findings a root cause explains, nested under it: fixing the cause fixes them."""
    lines = [f"**Consequences of {esc(root.get('code'))}** (other checks that fail because of it;"
             " fixing the cause fixes them):", ""]
    for f in consequences:
        lines.append(f"- **{esc(f.get('code'))}** ({esc(c.severity_label(f))}): {esc(f.get('message'))}")
        lines.append(f"  - expected {esc(f.get('expected'))}; observed {esc(f.get('observed'))}")
    return "\n".join(lines)


def _waived(result: Mapping[str, Any]) -> str:
    waived = c.waived_findings(result)
    if not waived:
        return ""
    rows = [[f.get("severity"), f.get("code"), f.get("message")] for f in waived]
    return f"## Waived findings ({len(waived)})\n\n" + table(["severity", "code", "message"], rows)


def _checks(result: Mapping[str, Any]) -> str:
    """Checks that did not pass in a table; passed ones folded into a collapsed section."""
    checks = c.items(result, "checks")
    if not checks:
        return ""
    groups = c.by_status(checks)
    passed = groups.pop("passed", [])
    ordered = [ch for group in groups.values() for ch in group]
    out = [f"## Checks ({len(checks)})"]
    if ordered:
        rows = [[ch.get("status"), ch.get("id"), ch.get("area"), ch.get("reason")] for ch in ordered]
        out.append(table(["status", "check", "area", "reason"], rows))
    if passed:
        rows = [[ch.get("id"), ch.get("area"), ch.get("title")] for ch in passed]
        out.append(f"<details><summary>{len(passed)} passed checks</summary>\n\n"
                   + table(["check", "area", "title"], rows) + "\n\n</details>")
    return "\n\n".join(out)
