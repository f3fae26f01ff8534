"""Short plain-text summary for the terminal: verdict line, findings table, counts.

Control characters (ANSI escapes included) are stripped from result text so a class
name or message cannot rewrite the user's terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tabulate import tabulate

from bnconform.render import common as c

MESSAGE_WIDTH = 72


def render(result: Mapping[str, Any]) -> str:
    """Verdict line, then a table of active findings (if any), then the counts."""
    lines = [_verdict_line(result)]
    findings = c.active_findings(result)
    if findings:
        rows = [[c.one_line(f.get("severity")), c.one_line(f.get("code"), 32),
                 c.one_line(f.get("message"), MESSAGE_WIDTH)] for f in findings]
        lines += ["", tabulate(rows, headers=["severity", "code", "message"],
                               tablefmt="simple", disable_numparse=True)]
    lines += ["", c.count_line(result)]
    closest = c.closest_spec_sentence(result)
    if c.section(c.section(result, "fingerprint"), "closest_spec"):
        lines.append(closest)
    return "\n".join(lines) + "\n"


def _verdict_line(result: Mapping[str, Any]) -> str:
    target = c.one_line(c.section(result, "target").get("text"), 80)
    spec = c.one_line(c.section(result, "spec").get("name"), 40)
    return f"bnconform {c.verdict(result).upper()}: {target} vs spec {spec}"
