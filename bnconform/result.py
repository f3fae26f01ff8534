"""Assembles the canonical result dict (schema "bnconform.result/1", see DESIGN.md)."""

from __future__ import annotations

import datetime as dt
import math
import platform
from collections.abc import Sequence
from typing import Any

import torch

import bnconform
from bnconform.context import RunContext
from bnconform.diagnosis import annotate_checks, diagnose, effective_severities
from bnconform.findings import CheckResult, Finding, Severity, Status
from bnconform.target import Target

SCHEMA = "bnconform.result/1"


def environment() -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
    }


def target_info(target: Target, ctx: RunContext) -> dict[str, Any]:
    return {
        "text": target.text,
        "qualname": target.qualname,
        "file": target.file,
        "doc": target.doc,
        "construction": ctx.builder.describe(
            ctx.channels, **({"rank": ctx.primary_rank} if ctx.builder.accepts("rank") else {})
        ),
        "parameters": dict(ctx.builder.roles),
        "tensors": discovered_tensors(ctx),
    }


def domain_info(ctx: RunContext) -> dict[str, Any] | None:
    """What the class accepts (ranks, batch sizes, channels; probes/domain.py) as discovered,
    or None when discovery did not finish (the findings say why). Never runs user code."""
    domain = ctx.known_domain()
    return domain.to_json() if domain is not None else None


def discovered_tensors(ctx: RunContext) -> dict[str, dict[str, str]]:
    """Where weight, bias and running statistics were found, and as what (Parameter, buffer, attribute)."""
    from bnconform.probes.basics import found_tensors

    try:
        found = ctx.probe(found_tensors)
    except Exception:  # noqa: BLE001 - the class may not even construct; the findings say why
        return {}
    return {role: {"name": s.name, "kind": s.kind, "found_by": s.found_by} for role, s in found.slots.items()}


def unique_findings(checks: Sequence[CheckResult]) -> list[Finding]:
    """All findings; one user-code crash seen by several checks is reported once."""
    seen, unique = set(), []
    for result in checks:
        for finding in result.findings:
            key = (finding.code, finding.message.split(" (while checking")[0], finding.device)
            if key not in seen:
                seen.add(key)
                unique.append(finding)
    return unique


def summary(
    checks: Sequence[CheckResult], findings: Sequence[Finding], fail_on: str, duration: float
) -> dict[str, Any]:
    counts = {s.value: 0 for s in Severity} | {"waived": 0} | {s.value: 0 for s in Status}
    for finding in findings:
        counts["waived" if finding.waived else finding.severity.value] += 1
    for result in checks:
        counts[result.status.value] += 1
    threshold = Severity(fail_on).rank
    # A check that could not run (an internal error) proves nothing: the run cannot pass.
    errored = any(result.status == Status.ERRORED for result in checks)
    failing = errored or any(not f.waived and f.severity.rank >= threshold for f in findings)
    # A waiver hides a failure, it cannot prove anything: with the class unbuildable or its
    # forward broken (waived) and no check verified, the run is inconclusive, never a pass.
    verified = any(r.status == Status.PASSED and r.check_id != "global-state-changed" for r in checks)
    inconclusive = not failing and not verified and any(
        f.waived and f.code in ("construct-failed", "forward-failed") for f in findings)
    return {
        "verdict": "fail" if failing else "inconclusive" if inconclusive else "pass",
        "exit_code": 1 if failing or inconclusive else 0,
        "counts": counts,
        "duration_s": round(duration, 3),
    }


def assemble(
    *,
    ctx: RunContext,
    target: Target,
    checks: Sequence[CheckResult],
    fingerprint: dict[str, Any],
    plots: dict[str, Any],
    settings: dict[str, Any],
    duration: float,
) -> dict[str, Any]:
    findings = effective_severities(unique_findings(checks))
    ordered = diagnose(findings)  # root causes first, consequences folded under them
    checks_json = [c.to_json() for c in checks]
    annotate_checks(checks_json, ordered)
    return finite(
        {
            "schema": SCHEMA,
            "tool": {"name": "bnconform", "version": bnconform.__version__},
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "environment": environment(),
            "target": target_info(target, ctx),
            "domain": domain_info(ctx),
            "spec": {"name": ctx.spec.name, "path": ctx.spec.path, "description": ctx.spec.description},
            "settings": settings,
            "fingerprint": fingerprint,
            "checks": checks_json,
            "findings": ordered,
            "plots": plots,
            "summary": summary(checks, findings, settings["fail_on"], duration),
        }
    )


def finite(value: Any) -> Any:
    """JSON has no NaN/inf: write them as strings so every parser reads the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
