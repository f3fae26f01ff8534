"""Helpers shared by the renderers: safe text, ordering and grouping of the result dict.

Renderers receive the canonical result as loaded from JSON, possibly written by another
version or edited by hand, so every accessor here tolerates missing keys and odd types.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

SEVERITIES: tuple[str, ...] = ("error", "warning", "info")
STATUSES: tuple[str, ...] = ("failed", "errored", "blocked", "skipped", "passed")
COUNT_KEYS: tuple[str, ...] = (
    "error", "warning", "info", "waived", "passed", "failed", "skipped", "blocked", "errored",
)

# C0/C1 control characters except tab and newline; also lone surrogates and the XML
# non-characters. They can hide text in terminals or make XML unparseable.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def text(value: Any) -> str:
    """Any JSON value as display text, with control characters removed (None -> "")."""
    if value is None:
        return ""
    return _CONTROL.sub("", value if isinstance(value, str) else str(value))


def one_line(value: Any, limit: int | None = None) -> str:
    """`text` collapsed onto one line and optionally truncated with an ellipsis."""
    flat = " ".join(text(value).split())
    if limit is not None and len(flat) > limit:
        return flat[: max(limit - 1, 0)] + "…"
    return flat


def section(result: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A sub-object of the result, or an empty mapping when it is absent or malformed."""
    value = result.get(key)
    return value if isinstance(value, Mapping) else {}


def items(result: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """A list of objects of the result (checks, findings), skipping malformed entries."""
    value = result.get(key)
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, Mapping)]


def verdict(result: Mapping[str, Any]) -> str:
    """"pass" or "fail" (or whatever the file says), lower case."""
    return one_line(section(result, "summary").get("verdict", "unknown")).lower() or "unknown"


def counts(result: Mapping[str, Any]) -> dict[str, int]:
    """Summary counts, recomputed from checks/findings where the summary lacks them."""
    given = section(section(result, "summary"), "counts")
    computed = _computed_counts(result)
    return {k: _as_int(given.get(k), computed[k]) for k in COUNT_KEYS}


def _computed_counts(result: Mapping[str, Any]) -> dict[str, int]:
    out = dict.fromkeys(COUNT_KEYS, 0)
    for check in items(result, "checks"):
        status = text(check.get("status"))
        if status in out:
            out[status] += 1
    for finding in items(result, "findings"):
        key = "waived" if finding.get("waived") else text(finding.get("severity"))
        if key in out:
            out[key] += 1
    return out


def _as_int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def active_findings(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Findings that are not waived, most severe first (stable within a severity)."""
    found = [f for f in items(result, "findings") if not f.get("waived")]
    return sorted(found, key=lambda f: severity_rank(f.get("severity")))


def waived_findings(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Findings the user waived (listed apart; they never fail a run)."""
    return [f for f in items(result, "findings") if f.get("waived")]


def severity_rank(severity: Any) -> int:
    """0 for error, 1 warning, 2 info, 3 anything unknown (sort key)."""
    name = text(severity)
    return SEVERITIES.index(name) if name in SEVERITIES else len(SEVERITIES)


def by_severity(findings: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Findings grouped by severity in error/warning/info order; unknown ones under "other"."""
    groups: dict[str, list[Mapping[str, Any]]] = {s: [] for s in SEVERITIES}
    for finding in findings:
        name = text(finding.get("severity"))
        groups.setdefault(name if name in SEVERITIES else "other", []).append(finding)
    return {k: v for k, v in groups.items() if v}


def by_status(checks: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Checks grouped by status, problems first; unknown statuses kept under their name."""
    groups: dict[str, list[Mapping[str, Any]]] = {s: [] for s in STATUSES}
    for check in checks:
        groups.setdefault(one_line(check.get("status")) or "unknown", []).append(check)
    return {k: v for k, v in groups.items() if v}


def devices(result: Mapping[str, Any]) -> str:
    """The devices the run used, comma separated."""
    value = section(result, "settings").get("devices")
    if isinstance(value, list):
        return ", ".join(one_line(v) for v in value)
    return one_line(value)


def closest_spec_sentence(result: Mapping[str, Any]) -> str:
    """"Behaves like keras except running-var-estimator." from fingerprint.closest_spec."""
    closest = section(section(result, "fingerprint"), "closest_spec")
    name = one_line(closest.get("name"))
    if not name and closest.get("reason"):
        return f"Not compared with the shipped specs: {one_line(closest.get('reason'))}."
    if not name:
        return "No shipped spec describes this implementation closely."
    diffs = closest.get("differences")
    diffs = [one_line(d) for d in diffs] if isinstance(diffs, list) else []
    if not diffs:
        return f"Behaves like the {name} spec."
    return f"Behaves like the {name} spec except {', '.join(diffs)}."


def header_fields(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs every report starts with."""
    settings = section(result, "settings")
    env = section(result, "environment")
    tool = section(result, "tool")
    return [
        ("Verdict", verdict(result).upper()),
        ("Target", one_line(section(result, "target").get("text"))),
        ("Spec", one_line(section(result, "spec").get("name"))),
        ("Devices", devices(result)),
        ("Seed", one_line(settings.get("seed"))),
        ("Profile", one_line(settings.get("profile"))),
        ("bnconform", one_line(tool.get("version"))),
        ("torch", one_line(env.get("torch"))),
        ("Python", one_line(env.get("python"))),
        ("Date", one_line(result.get("created"))),
    ]


def count_line(result: Mapping[str, Any]) -> str:
    """"2 errors, 1 warning, 0 info, 1 waived; checks: 25 passed, 3 failed, ..."."""
    c = counts(result)
    findings = (
        f"{_plural(c['error'], 'error')}, {_plural(c['warning'], 'warning')}, "
        f"{c['info']} info, {c['waived']} waived"
    )
    checks = ", ".join(f"{c[s]} {s}" for s in ("passed", "failed", "skipped", "blocked", "errored"))
    return f"{findings}; checks: {checks}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def construction_line(result: Mapping[str, Any]) -> str:
    """"Built as BatchNorm(nf=3); running_mean = moving_mean (plain attribute, by name); ..." """
    target = section(result, "target")
    built = one_line(target.get("construction"))
    tensors = section(target, "tensors")
    found = [f"{one_line(role)} = {tensor_label(t)}" for role, t in tensors.items() if isinstance(t, Mapping)]
    if not built and not found:
        return ""
    return "Built as " + "; ".join([f"`{built}`" if built else "?", *found])


def tensor_label(tensor: Mapping[str, Any]) -> str:
    """"moving_mean (buffer, by name)"."""
    return f"{one_line(tensor.get('name'))} ({one_line(tensor.get('kind'))}, by {one_line(tensor.get('found_by'))})"
