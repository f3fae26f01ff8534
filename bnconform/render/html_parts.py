"""Sections of the HTML report. Every value taken from the result passes through `e`."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bnconform.render import common as c


def e(value: Any) -> str:
    """Result text as HTML: control characters dropped, `<>&"'` escaped."""
    return html.escape(c.text(value), quote=True)


def css_token(value: Any, allowed: Iterable[str]) -> str:
    """A class/data-* token from a fixed vocabulary (never free result text)."""
    name = c.text(value)
    return name if name in allowed else "other"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    """A table whose cells are escaped text; a cell given as `(text, class)` gets a class."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_td(v) for v in row) + "</tr>\n" for row in rows)
    cls_attr = f' class="{cls}"' if cls else ""
    return f"<table{cls_attr}><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


def _td(value: Any) -> str:
    if isinstance(value, tuple):
        text, cls = value
        return f'<td class="{cls}">{e(text)}</td>'
    return f"<td>{e(value)}</td>"


def header(result: Mapping[str, Any]) -> str:
    """The first screen: verdict, target, the finding to fix first and its fix, the closest
    shipped convention, the input domain and the counts (run metadata comes last)."""
    verdict = css_token(c.verdict(result), ("pass", "fail"))
    target = c.one_line(c.section(result, "target").get("text"))
    domain = c.domain_sentence(result)
    return (
        f'<header class="{verdict}" id="summary"><h1><span class="badge {verdict}" id="verdict">'
        f"{e(c.verdict(result).upper())}</span> {e(target)}</h1>\n{fix_first(result)}"
        f'<p id="convention">{e(c.closest_spec_sentence(result))}</p>\n'
        + (f'<p id="domain">{e(domain)}</p>\n' if domain else "")
        + f'<p class="counts">{e(c.count_line(result))}</p></header>'
    )


def fix_first(result: Mapping[str, Any]) -> str:
    """The first root cause, its fix and what else it explains, linked to its full entry."""
    root = c.first_root(result)
    if root is None:
        return ""
    sev = css_token(root.get("severity"), c.SEVERITIES)
    consequences = c.grouped(result)[0][1]
    also = c.consequence_line(consequences)
    hint = c.text(root.get("hint")).strip()
    return (
        f'<div class="fix-first {sev}" id="fix-first"><p><strong>Fix first:</strong> '
        f'<a href="#finding-1"><code class="code">{e(root.get("code"))}</code></a>: '
        f'{e(root.get("message"))}</p>'
        + (f"<p><strong>How to fix:</strong> {e(hint)}</p>" if hint else "")
        + (f"<p>{e(also[:1].upper() + also[1:])}.</p>" if also else "")
        + "</div>\n"
    )


def run_metadata(result: Mapping[str, Any]) -> str:
    """Spec, devices, seed, versions and date: after the findings (they rarely decide a fix)."""
    fields = [(k, v) for k, v in c.header_fields(result) if k not in ("Verdict", "Target")]
    meta = "".join(f"<dt>{e(k)}</dt><dd>{e(v or '-')}</dd>" for k, v in fields)
    return f'<section id="run"><h2>Run</h2><dl class="meta">{meta}</dl></section>'


def filters(result: Mapping[str, Any]) -> str:
    """Filter buttons; hidden without JavaScript (the page is complete without them)."""
    counts = c.counts(result)
    sev = [_button("severity", "all", "All", True)]
    sev += [_button("severity", s, f"{s} ({counts[s]})") for s in c.SEVERITIES]
    status = [_button("status", "all", "All", True)]
    status += [_button("status", s, f"{s} ({counts[s]})") for s in c.STATUSES]
    return (
        '<nav id="filters" data-js hidden aria-label="filters">'
        f'<span>Findings:</span>{"".join(sev)}<span>Checks:</span>{"".join(status)}</nav>'
    )


def _button(group: str, value: str, label: str, pressed: bool = False) -> str:
    return (f'<button type="button" data-group="{group}" data-filter="{value}" '
            f'aria-pressed="{str(pressed).lower()}">{e(label)}</button>')


def fingerprint(result: Mapping[str, Any]) -> str:
    """What the implementation does, in spec vocabulary, next to what the spec says."""
    rows = c.items(c.section(result, "fingerprint"), "rows")
    body = [
        (r.get("label") or r.get("key"), r.get("expected"), r.get("observed"),
         (r.get("verdict"), css_token(r.get("verdict"), ("matches", "differs", "unknown"))))
        for r in rows
    ]
    tbl = table(["property", "expected", "observed", "verdict"], body, "fingerprint") if rows \
        else "<p>No fingerprint was recorded.</p>"
    return (f'<section id="fingerprint"><h2>Fingerprint vs spec</h2>{tbl}\n'
            f'<p class="closest">{e(c.closest_spec_sentence(result))}</p></section>')


def findings(result: Mapping[str, Any]) -> str:
    """Root causes in report order (the first is the one to fix first), each with the
    findings it explains nested under it."""
    groups = c.grouped(result)
    total = sum(1 + len(consequences) for _, consequences in groups)
    parts = [f'<section id="findings"><h2>Findings ({total})</h2>']
    if not groups:
        parts.append("<p>No findings: the implementation behaves as the spec says.</p>")
    index = len(groups)
    for number, (root, consequences) in enumerate(groups, 1):
        nested = []
        for consequence in consequences:
            index += 1
            nested.append(finding(consequence, index, cause=c.one_line(root.get("code"))))
        parts.append(finding(root, number, nested))
    parts.append("</section>")
    return "\n".join(parts)


def finding(f: Mapping[str, Any], index: int, consequences: Sequence[str] = (), cause: str = "") -> str:
    """One finding: code and message, expected vs observed, why, fix, repro with copy; a root
    cause carries the findings it explains (`consequences`, already rendered) inside it."""
    sev = css_token(f.get("severity"), c.SEVERITIES)
    eo = table(["", "value"], [("expected", f.get("expected")), ("observed", f.get("observed")),
                               ("device", f.get("device"))], "eo")
    prose = "".join(f"<p><strong>{label}:</strong> {e(f.get(key))}</p>"
                    for label, key in (("Why it matters", "why"), ("How to fix", "hint"))
                    if c.text(f.get(key)).strip())
    impact = _impact(f.get("details"))
    role = f'<p class="cause">A consequence of <code>{e(cause)}</code>: fixing that fixes this.</p>' \
        if cause else ""
    body = f"{eo}{impact}{prose}{repro(f.get('repro'), f'repro-{index}')}{_details(f.get('details'))}"
    if cause:  # a consequence: collapsed, the cause above is the thing to read
        body = f"<details><summary>details</summary>{body}</details>"
    nested = ""
    if consequences:
        nested = (f'<section class="consequences"><h5>Consequences ({len(consequences)}): '
                  "other checks that fail because of this</h5>" + "".join(consequences) + "</section>")
    kind = "consequence" if cause else "root"
    return (
        f'<article class="finding {sev} {kind}" data-severity="{sev}" id="finding-{index}">'
        f'<h4><span class="sev {sev}">{e(c.severity_label(f))}</span>'
        f'<code class="code">{e(f.get("code"))}</code>: {e(f.get("message"))}</h4>'
        f"{role}{body}{nested}</article>"
    )


def _impact(details: Any) -> str:
    value = details.get("impact") if isinstance(details, Mapping) else None
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    text = details.get("impact_text") or f"relative output error {value:.3g}"
    return f'<p class="impact"><strong>Impact:</strong> {e(str(text))}</p>'


def repro(code: Any, ident: str) -> str:
    """The reproduction snippet in a <pre>, with a copy button shown only with JavaScript."""
    if not c.text(code).strip():
        return ""
    return (
        '<div class="repro-head"><span>Reproduce with:</span>'
        f'<button type="button" class="copy" data-js hidden data-copy="{ident}">Copy</button>'
        f'</div><pre><code id="{ident}" class="language-python">{e(code)}</code></pre>'
    )


def _details(details: Any) -> str:
    if not details:
        return ""
    dumped = json.dumps(details, indent=2, sort_keys=True, default=str)
    return ("<details><summary>raw measurements</summary>"
            f"<pre><code>{e(dumped)}</code></pre></details>")


def waived(result: Mapping[str, Any]) -> str:
    """Waived findings, listed apart: they never fail the run."""
    found = c.waived_findings(result)
    if not found:
        return ""
    rows = [(f.get("severity"), f.get("code"), f.get("message"), f.get("device")) for f in found]
    return (f'<section id="waived"><h2>Waived findings ({len(found)})</h2>'
            f'{table(["severity", "code", "message", "device"], rows, "waived")}</section>')


def checks(result: Mapping[str, Any]) -> str:
    """All checks by status; problems open, passed checks collapsed."""
    groups = c.by_status(c.items(result, "checks"))
    parts = [f'<section id="checks"><h2>Checks ({sum(map(len, groups.values()))})</h2>']
    for status, group in groups.items():
        token = css_token(status, c.STATUSES)
        opened = "" if status in ("passed", "skipped") else " open"
        rows = [(ch.get("id"), ch.get("area"), ch.get("title"), ch.get("reason"),
                 _seconds(ch.get("duration_s"))) for ch in group]
        parts.append(
            f'<details class="check-group" data-status="{token}"{opened}>'
            f'<summary class="status-{token}">{e(status)} ({len(group)})</summary>'
            f'{table(["check", "area", "title", "reason", "time"], rows, "checks")}</details>'
        )
    parts.append("</section>")
    return "\n".join(parts)


def _seconds(value: Any) -> str:
    return f"{value:.3f} s" if isinstance(value, int | float) else c.one_line(value)


def target_and_environment(result: Mapping[str, Any]) -> str:
    """What was checked (target, construction, parameter mapping) and where it ran."""
    target = c.section(result, "target")
    spec = c.section(result, "spec")
    params = c.section(target, "parameters")
    rows = [(k, target.get(k)) for k in ("text", "qualname", "file", "doc", "construction")]
    rows += [(f"role {k}", v) for k, v in params.items()]
    rows += [(f"tensor {role}", c.tensor_label(t))
             for role, t in c.section(target, "tensors").items() if isinstance(t, Mapping)]
    rows += [("spec", spec.get("name")), ("spec file", spec.get("path")),
             ("spec description", spec.get("description"))]
    env = [(k, "-" if v is None else v) for k, v in c.section(result, "environment").items()]
    env += [(f"setting {k}", _setting(v)) for k, v in c.section(result, "settings").items()]
    return (f'<section id="target"><h2>Target</h2>{table(["field", "value"], rows)}</section>\n'
            f'<section id="environment"><h2>Environment</h2>'
            f'{table(["field", "value"], env)}</section>')


def _setting(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(c.one_line(v) for v in value) or "-"
    return c.one_line(value)
