"""Helpers shared by the renderers: safe text, ordering and grouping of the result dict.

Renderers receive the canonical result as loaded from JSON, possibly written by another
version or edited by hand, so every accessor here tolerates missing keys and odd types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bnconform.render.sanitize import inert

SEVERITIES: tuple[str, ...] = ("error", "warning", "info")
STATUSES: tuple[str, ...] = ("failed", "errored", "blocked", "skipped", "passed")
COUNT_KEYS: tuple[str, ...] = (
    "error", "warning", "info", "waived", "passed", "failed", "skipped", "blocked", "errored",
)


def text(value: Any) -> str:
    """Any JSON value as display text, made inert (None -> ""): control characters, ANSI
    escapes and bidi overrides are shown escaped (`\\x1b`, `\\u202e`), see sanitize.py."""
    if value is None:
        return ""
    return inert(value if isinstance(value, str) else str(value))


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
    """Findings that are not waived, in report order: each root cause followed by what it
    explains (see `grouped`)."""
    return [f for root, consequences in grouped(result) for f in (root, *consequences)]


def grouped(result: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], list[Mapping[str, Any]]]]:
    """Active findings as (root cause, [its consequences]) in report order.

    Written by bnconform.diagnosis: the JSON order is already root-first, and a consequence
    names its root in `caused_by`. Older or hand-edited files lack that: every finding is
    then a root, and a `caused_by` naming no active finding is ignored. Roots are ordered by
    the worst severity in their group (stable, so the file's impact order is kept)."""
    found = [f for f in items(result, "findings") if not f.get("waived")]
    codes = {text(f.get("code")) for f in found}
    roots: dict[str, tuple[Mapping[str, Any], list[Mapping[str, Any]]]] = {}
    order: list[tuple[Mapping[str, Any], list[Mapping[str, Any]]]] = []
    late: list[Mapping[str, Any]] = []
    for f in found:
        cause = text(f.get("caused_by"))
        if cause and cause in codes and cause != text(f.get("code")):
            late.append(f)
            continue
        entry = (f, [])
        order.append(entry)
        roots.setdefault(text(f.get("code")), entry)
    for f in late:
        entry = roots.get(text(f.get("caused_by")))
        if entry is None:  # its cause is itself a consequence: hand-edited; show it on its own
            order.append((f, []))
        else:
            entry[1].append(f)
    return sorted(order, key=lambda e: min(severity_rank(x.get("severity")) for x in (e[0], *e[1])))


def nested_code(code: Any, consequence: bool, limit: int | None = None) -> str:
    """A code for a flat list: consequences indented under their cause ("└ state-dict")."""
    return ("└ " if consequence else "") + one_line(code, limit)


def is_consequence(finding: Mapping[str, Any], findings: Iterable[Mapping[str, Any]]) -> bool:
    """True when `finding` is listed under a cause among `findings` (the active findings)."""
    cause = text(finding.get("caused_by"))
    return bool(cause) and cause != text(finding.get("code")) and any(
        text(f.get("code")) == cause for f in findings)


def first_root(result: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The finding to fix first: the first root cause in report order."""
    groups = grouped(result)
    return groups[0][0] if groups else None


def fix_first_line(result: Mapping[str, Any], limit: int | None = None) -> str:
    """"Fix first: reduction-axes: <its hint>" ("" when nothing failed or no hint is given)."""
    root = first_root(result)
    hint = one_line(root.get("hint")) if root is not None else ""
    return one_line(f"Fix first: {one_line(root.get('code'))}: {hint}", limit) if root and hint else ""


def severity_label(finding: Mapping[str, Any]) -> str:
    """"warning" or, for a consequence capped at its cause's severity, "warning (measured: error)"."""
    details = finding.get("details")
    measured = one_line(details.get("measured_severity")) if isinstance(details, Mapping) else ""
    own = one_line(finding.get("severity"))
    return f"{own} (measured: {measured})" if measured and measured != own else own


def consequence_line(consequences: Iterable[Mapping[str, Any]]) -> str:
    """"also explains: output-mismatch, sequence-mismatch"."""
    codes = list(dict.fromkeys(one_line(f.get("code")) for f in consequences))
    return f"also explains: {', '.join(codes)}" if codes else ""


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


def fingerprint_note(rows: list[Mapping[str, Any]]) -> str:
    """How the fingerprint compares with the spec, counting only rows that were observed: an
    unknown row matches nothing."""
    verdicts = [text(r.get("verdict")) for r in rows]
    differ, unknown = verdicts.count("differs"), verdicts.count("unknown")
    if differ:
        return f"{differ} of {len(rows)} properties differ from the spec (marked ❌)."
    if unknown == len(rows):
        return "No property could be observed."
    if unknown:
        return f"Every observed property matches the spec; {unknown} of {len(rows)} could not be observed."
    return "Every property matches the spec."


def closest_spec_sentence(result: Mapping[str, Any]) -> str:
    """"Closest shipped convention: the keras spec, except running-var-estimator." The
    fingerprint is compared with every shipped spec and the nearest one is named."""
    closest = section(section(result, "fingerprint"), "closest_spec")
    name = one_line(closest.get("name"))
    if not name and closest.get("reason"):
        return f"Not compared with the shipped conventions: {one_line(closest.get('reason'))}."
    if not name:
        return "Closest shipped convention: none describes this implementation closely."
    diffs = closest.get("differences")
    diffs = [one_line(d) for d in diffs] if isinstance(diffs, list) else []
    unobserved = closest.get("unobserved")
    unobserved = [one_line(u) for u in unobserved] if isinstance(unobserved, list) else []
    if not diffs and unobserved:  # "exactly" would claim what was never measured
        return (f"Closest shipped convention: behaves like the {name} spec in every property observed "
                f"(not observed: {', '.join(unobserved)}).")
    if not diffs:
        return f"Closest shipped convention: behaves exactly like the {name} spec."
    return f"Closest shipped convention: behaves like the {name} spec except {', '.join(diffs)}."


def domain_sentence(result: Mapping[str, Any]) -> str:
    """"Accepts ranks [2] (rejects 3, 4); training needs N divisible by 2; probed at rank 2
    with N=6, C=5." from the optional `domain` section ("" when the file has none or null)."""
    domain = section(result, "domain")
    if not domain:
        return ""
    ranks = domain.get("ranks")
    parts = []
    if isinstance(ranks, list):
        parts.append(f"accepts ranks [{', '.join(one_line(r) for r in ranks)}]")
        rejected = section(domain, "rejected")
        if rejected:
            parts[-1] += f" (rejects {', '.join(one_line(r) for r in rejected)})"
    constraint = one_line(section(domain, "batch").get("constraint"))
    if constraint:
        parts.append(constraint)
    channels = section(domain, "channels")
    probe = one_line(domain.get("probe_rank"))
    sizes = [f"{name}={one_line(value)}" for name, value in
             (("N", section(domain, "batch").get("probe")), ("C", channels.get("probe"))) if value is not None]
    if probe:
        parts.append(f"probed at rank {probe}" + (f" with {', '.join(sizes)}" if sizes else ""))
    if channels.get("honoured") is False:
        parts.append("the channel count is not honoured (the class ignores num_features)")
    text_ = "; ".join(parts)
    return text_[:1].upper() + text_[1:] + "." if text_ else ""


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
