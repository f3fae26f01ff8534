"""The verdict from check results, torch-free: the worker's result and the report the
supervisor finishes alone (bnconform.supervise.fallback) decide it with the same code."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bnconform.findings import CheckResult, Finding, Severity, Status


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


def finite(value: Any) -> Any:
    """JSON has no NaN/inf: write them as strings so every parser reads the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
