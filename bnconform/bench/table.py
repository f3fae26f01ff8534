"""Rendering: the terminal table (tabulate), a Markdown section and an HTML section.

The target's name and the conformance detail are user-controlled text: Markdown escapes
the characters that would break a table or inject markup, HTML goes through html.escape.
"""

from __future__ import annotations

import html
import math
import re

from tabulate import tabulate

from .results import Report
from .shapes import shape_text, torch_class

TIMING_HEADERS = ("shape", "pass", "target ms", "torch ms", "ratio", "min ratio", "GB/s", "% peak",
                  "torch GB/s", "torch % peak", "conforms")
MEMORY_HEADERS = ("shape", "target peak MB", "torch peak MB", "target/torch")


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def timing_rows(report: Report) -> list[tuple[str, ...]]:
    mark = "yes" if report.conformance.conforms else "NO"
    return [
        (shape_text(t.shape), t.pass_name, f"{t.target_s * 1e3:.3f}", f"{t.torch_s * 1e3:.3f}", f"{t.ratio:.2f}x",
         "n/a" if t.min_ratio is None else f"{t.min_ratio:.2f}x",
         f"{t.gbps('target'):.1f}", percent(t.fraction("target")), f"{t.gbps('torch'):.1f}",
         percent(t.fraction("torch")), mark)
        for t in report.timings
    ]


def memory_rows(report: Report) -> list[tuple[str, ...]]:
    return [
        (shape_text(m.shape), f"{m.target_bytes / 1e6:.2f}", f"{m.torch_bytes / 1e6:.2f}",
         f"{m.target_bytes / m.torch_bytes:.2f}x" if m.torch_bytes else "n/a")
        for m in report.memory
    ]


def growth_lines(report: Report) -> list[str]:
    lines = []
    for role, g in report.growth.items():
        name = report.target if role == "target" else f"torch.nn:{torch_class(len(g.shape)).__name__}"
        lines.append(f"{role} ({name}): {g.mb_per_step:.4f} MB per training step "
                     f"over {g.steps} steps at {shape_text(g.shape)}")
    return lines


def change_rows(report: Report) -> list[tuple[str, ...]]:
    return [(shape_text(c.shape), c.pass_name, c.role, f"{c.before_s * 1e3:.3f}", f"{c.after_s * 1e3:.3f}",
             f"{100 * c.change:+.1f}%") for c in report.changes]


CHANGE_HEADERS = ("shape", "pass", "impl", "baseline ms", "now ms", "change")


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def notes(report: Report) -> list[str]:
    """The sentences shown under the tables, as plain text."""
    lines = [f"target: {report.target}; reference: {report.reference}; device {report.device}, {report.dtype}, "
             f"{report.threads} torch thread{'s' * (report.threads != 1)}",
             f"bandwidth ceiling: {report.ceiling.gbps:.1f} GB/s ({report.ceiling.source})",
             "times: medians (ms), the lower of two repeats run target, torch, torch, target; ratio = "
             "target/torch of the medians, min ratio = of the fastest rounds (the two agree on a quiet machine; "
             "when they disagree, other processes were competing for the CPU)",
             "GB/s and % peak are the target's; bytes model: eval 2, forward 3, forward+backward 8 x input bytes "
             "(see `bnconform bench --help`)",
             f"memory: {report.memory_method}"]
    if report.timings:
        lines.insert(0, f"slowdown: target/torch {geomean([t.ratio for t in report.timings]):.2f}x over all "
                        f"passes and shapes (geometric mean of the ratios)")
    if any((t.fraction(role) or 0) > 1 for t in report.timings for role in ("target", "torch")):
        lines.append("above 100% of the ceiling: that input fits in the CPU's caches, so a streaming copy "
                     "from memory is not its limit")
    if not report.conformance.conforms:
        lines.insert(0, f"WARNING: the target does not conform: {report.conformance.detail}")
    if report.threshold is not None:
        verdict = (f"SLOWER than the baseline by more than {100 * report.threshold:g}% in "
                   f"{len(report.slower)} benchmark(s)" if report.slower
                   else f"no target benchmark slower than the baseline by more than {100 * report.threshold:g}%")
        lines.append(f"regression check: {verdict}")
    return lines


def terminal(report: Report) -> str:
    parts = [tabulate(timing_rows(report), headers=TIMING_HEADERS, disable_numparse=True)]
    if report.memory:
        parts.append("peak memory of forward+backward:\n"
                     + tabulate(memory_rows(report), headers=MEMORY_HEADERS, disable_numparse=True))
    if report.growth:
        parts.append("memory growth:\n" + "\n".join("  " + line for line in growth_lines(report)))
    if report.changes:
        parts.append("against the baseline:\n"
                     + tabulate(change_rows(report), headers=CHANGE_HEADERS, disable_numparse=True))
    parts.append("\n".join(notes(report)))
    return "\n\n".join(parts)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")  # what acts mid-line; every line has a prefix


def md_escape(text: str) -> str:
    """Backslash-escape Markdown's special characters; newlines become spaces (one table cell)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def markdown(report: Report) -> str:
    def table(rows: list[tuple[str, ...]], headers: tuple[str, ...]) -> str:
        escaped = [tuple(md_escape(cell) for cell in row) for row in rows]
        return tabulate(escaped, headers=headers, tablefmt="github", disable_numparse=True)

    parts = [f"## Benchmark: {md_escape(report.target)}", table(timing_rows(report), TIMING_HEADERS)]
    if report.memory:
        parts += ["### Peak memory of forward+backward", table(memory_rows(report), MEMORY_HEADERS)]
    if report.growth:
        parts += ["### Memory growth", "\n".join(f"- {md_escape(line)}" for line in growth_lines(report))]
    if report.changes:
        parts += ["### Against the baseline", table(change_rows(report), CHANGE_HEADERS)]
    parts.append("\n".join(f"- {md_escape(line)}" for line in notes(report)))
    return "\n\n".join(parts) + "\n"


def html_table(rows: list[tuple[str, ...]], headers: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_page(report: Report) -> str:
    title = html.escape(f"bnconform bench: {report.target}")
    parts = [f"<h2>{title}</h2>", html_table(timing_rows(report), TIMING_HEADERS)]
    if report.memory:
        parts += ["<h3>Peak memory of forward+backward</h3>", html_table(memory_rows(report), MEMORY_HEADERS)]
    if report.growth:
        parts += ["<h3>Memory growth</h3><ul>"
                  + "".join(f"<li>{html.escape(line)}</li>" for line in growth_lines(report)) + "</ul>"]
    if report.changes:
        parts += ["<h3>Against the baseline</h3>", html_table(change_rows(report), CHANGE_HEADERS)]
    parts.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in notes(report)) + "</ul>")
    style = "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
