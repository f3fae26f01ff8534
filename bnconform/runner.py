"""Runs the registered checks in order, blocking dependants of failed prerequisites."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import replace

from bnconform import progress
from bnconform.construct import Unsupported
from bnconform.context import RunContext
from bnconform.errors import UserCodeError
from bnconform.findings import CheckResult, Finding, Status
from bnconform.registry import CheckSpec, Verdict, all_checks

NOT_PASSING = (Status.FAILED, Status.BLOCKED, Status.ERRORED)


def run_checks(ctx: RunContext, ignore: Iterable[str] = ()) -> list[CheckResult]:
    waived = set(ignore)
    results: dict[str, CheckResult] = {}
    for spec in execution_order(all_checks()):
        results[spec.code] = run_one(ctx, spec, results, waived)
    return list(results.values())


def execution_order(checks: list[CheckSpec]) -> list[CheckSpec]:
    """Registration order, except that no check runs before a check it requires.

    Blocking looks only at prerequisites already run, so without this a reordered import
    of the check modules (isort sorts bnconform/checks/__init__.py alphabetically) would
    silently turn "blocked by construct-failed" into a cascade of failures.
    """
    by_code = {c.code: c for c in checks}
    ordered: list[CheckSpec] = []
    seen: set[str] = set()

    def visit(spec: CheckSpec) -> None:
        if spec.code in seen:
            return
        seen.add(spec.code)
        for code in spec.requires:
            if code in by_code:
                visit(by_code[code])
        ordered.append(spec)

    for spec in checks:
        visit(spec)
    return ordered


def run_one(ctx: RunContext, spec: CheckSpec, done: dict[str, CheckResult], waived: set[str]) -> CheckResult:
    if spec.profile != "default" and ctx.settings.profile != spec.profile:
        return CheckResult(spec.code, spec.area, spec.title, Status.SKIPPED, f"runs with --profile {spec.profile}")
    blocker = next((code for code in spec.requires if code in done and done[code].status in NOT_PASSING), None)
    if blocker is not None:
        return CheckResult(spec.code, spec.area, spec.title, Status.BLOCKED, f"blocked by {root_cause(blocker, done)}")
    progress.emit("check", code=spec.code)
    started = time.perf_counter()
    result = execute(ctx, spec, waived)
    return CheckResult(
        result.check_id,
        result.area,
        result.title,
        result.status,
        result.reason,
        result.findings,
        result.measurements,
        time.perf_counter() - started,
    )


def root_cause(code: str, done: dict[str, CheckResult]) -> str:
    """Follow "blocked by" links to the check that really failed."""
    while code in done and done[code].status == Status.BLOCKED and done[code].reason.startswith("blocked by "):
        code = done[code].reason.removeprefix("blocked by ")
    return code


def execute(ctx: RunContext, spec: CheckSpec, waived: set[str]) -> CheckResult:
    """Run one check, or take its result over from a worker that died (bnconform.supervise)."""
    result = resumed(ctx, spec, waived)
    if result is None:
        result = evaluate(ctx, spec, waived)
    progress.emit("check-result", result=result.to_json())  # the supervisor keeps it across restarts
    return result


def resumed(ctx: RunContext, spec: CheckSpec, waived: set[str]) -> CheckResult | None:
    """The result an earlier worker sent, or the crash that killed it during this check."""
    from bnconform.supervise.protocol import check_result_from_json
    from bnconform.supervise.session import CURRENT

    if spec.code in CURRENT.results:
        return check_result_from_json(CURRENT.results[spec.code])
    crash = CURRENT.crashes.get(spec.code)
    if crash is None:
        return None
    result = crashed(ctx, spec, UserCodeError(crash["what"], crash["detail"], crash["kind"]), waived)
    output = crash.get("output")
    if output:  # the worker's last words (a faulthandler dump, a C-level message)
        finding = result.findings[0]
        details = {**finding.details, "output": output}
        result = replace(result, findings=(replace(finding, details=details),))
    return result


def evaluate(ctx: RunContext, spec: CheckSpec, waived: set[str]) -> CheckResult:
    try:
        verdict = spec.fn(ctx)
    except UserCodeError as error:
        return crashed(ctx, spec, error, waived)
    except Unsupported as missing:
        verdict = Verdict("skipped", reason=f"the constructor takes no {missing.role} argument")
    except (Exception, SystemExit) as error:  # noqa: BLE001 - never ends the run, never passes it
        # SystemExit here comes from user code our own code touched (a tensor subclass method,
        # an exception's __str__): it must not end the worker as if the run had finished.
        reason = f"internal error: {type(error).__name__}: {safe_text(error)}"
        return CheckResult(spec.code, spec.area, spec.title, Status.ERRORED, reason)
    return from_verdict(ctx, spec, verdict, waived)


def safe_text(error: BaseException) -> str:
    try:
        return str(error)
    except BaseException:  # noqa: BLE001 - a user __str__ may raise anything
        return "<str() raised>"


def from_verdict(ctx: RunContext, spec: CheckSpec, verdict: Verdict, waived: set[str]) -> CheckResult:
    status = Status(verdict.status)
    findings: tuple[Finding, ...] = ()
    if status == Status.FAILED:
        findings = (
            Finding(
                code=spec.code,
                severity=verdict.severity or spec.severity,
                message=verdict.message,
                expected=verdict.expected,
                observed=verdict.observed,
                why=spec.why,
                hint=verdict.hint or spec.hint,
                repro=verdict.repro,
                device=ctx.settings.device,
                details={**impact_details(ctx, spec.code), **verdict.details},
                waived=spec.code in waived,
            ),
        )
    return CheckResult(spec.code, spec.area, spec.title, status, verdict.reason, findings, dict(verdict.measurements))


def impact_details(ctx: RunContext, code: str) -> dict[str, object]:
    """What this finding's deviation alone costs (probes.impact): orders the report."""
    from bnconform.probes.impact import STEPS, impact

    measured = impact(ctx, code)
    if measured is None or not math.isfinite(measured[0]):
        return {}
    value, where = measured
    outputs = "training outputs" if where == "train" else f"eval outputs after {STEPS} training steps"
    return {"impact": value, "impact_text": f"alone, this makes {outputs} differ from the spec's by {value:.2%}"}


def crashed(ctx: RunContext, spec: CheckSpec, error: UserCodeError, waived: set[str]) -> CheckResult:
    """User code raised, hung or returned NaN while this check drove it: a finding, not a crash."""
    from bnconform.registry import get_check

    code = spec.code if spec.code in ("construct-failed", "forward-failed") else culprit(error)
    owner = get_check(code)
    context = "" if code == spec.code else f" (while checking {spec.code})"
    finding = Finding(
        code=code,
        severity=owner.severity,
        message=f"{error}{context}",
        expected="returns normally" if error.kind != "nan" else "finite values",
        observed={"timeout": "hangs", "nan": "NaN/inf", "raised": "raises",
                  "crashed": "ends the process"}.get(error.kind, error.kind),
        why=owner.why,
        hint=owner.hint,
        repro=crash_repro(ctx, error),
        device=ctx.settings.device,
        details={"kind": error.kind},
        waived=code in waived,
    )
    return CheckResult(spec.code, spec.area, spec.title, Status.FAILED, "", (finding,))


def culprit(error: UserCodeError) -> str:
    """construct-failed when a constructor call failed, forward-failed for every other call."""
    return "construct-failed" if error.what.startswith("construct") else "forward-failed"


def crash_repro(ctx: RunContext, error: UserCodeError) -> str:
    from bnconform.repro import snippet

    if error.what.startswith("construct"):
        return snippet(ctx, [])
    train = not error.what.startswith("eval")
    body = [f"bn.{'train' if train else 'eval'}()", "y = bn(x)"]
    if "requires grad" in error.detail:  # torch's in-place-on-a-leaf error: only an input that requires grad shows it
        body.insert(0, "x.requires_grad_(True)")
    body += CRASH_SHOWN.get(error.kind, [])
    return snippet(ctx, body)


# What a repro prints so that the failure shows where bn(x) itself does not raise.
CRASH_SHOWN = {
    "nan": ["print('finite:', torch.isfinite(y).all())"],
    "type": ["print('bn(x) returned', type(y).__name__, '(a tensor is expected)')"],
    "shape": ["print('output shape', tuple(y.shape), 'for input shape', tuple(x.shape))"],
}
