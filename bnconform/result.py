"""Assembles the canonical result dict (schema "bnconform.result/1", see DESIGN.md)."""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Sequence
from typing import Any

import torch

import bnconform
from bnconform.context import RunContext
from bnconform.diagnosis import annotate_checks, diagnose, effective_severities
from bnconform.findings import CheckResult
from bnconform.target import Target
from bnconform.verdict import finite, summary, unique_findings  # noqa: F401 - torch-free, shared with the supervisor

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
