"""The report the supervisor finishes alone, when no worker can or none is worth starting:
the import or a root check (construct-failed, forward-failed) killed it, the restart cap
was reached, or --max-time ran out. Torch-free like the rest of the supervisor; the verdict
comes from the same code as the worker's (bnconform.verdict, bnconform.diagnosis)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from bnconform.errors import UserCodeError
from bnconform.findings import CheckResult, Finding, Severity, Status
from bnconform.supervise.protocol import check_result_from_json

ROOT_KINDS = ("construct-failed", "forward-failed")


def assemble_alone(sup: Any, record: Mapping[str, Any], duration: float) -> dict[str, Any]:
    from bnconform.diagnosis import annotate_checks, diagnose, effective_severities
    from bnconform.verdict import finite, summary, unique_findings

    checks = finished_checks(sup, record)
    findings = effective_severities(unique_findings(checks))
    checks_json = [c.to_json() for c in checks]
    ordered = diagnose(findings)  # as bnconform.result.assemble: root causes first
    annotate_checks(checks_json, ordered)
    options = sup.options
    return finite({
        "schema": "bnconform.result/1",
        "tool": {"name": "bnconform", "version": version()},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "environment": environment(),
        "domain": None,
        "target": {"text": sup.target, "qualname": sup.target.rpartition(":")[2], "file": target_file(sup.target),
                   "doc": "", "construction": "", "parameters": {}, "tensors": {}},
        "spec": {"name": str(options.get("spec", "pytorch")), "path": None, "description": ""},
        "settings": {"seed": options.get("seed", 0), "devices": [options.get("device", "cpu")],
                     "profile": options.get("profile", "default"), "fail_on": options.get("fail_on", "error"),
                     "ignore": sorted(options.get("ignore", ())), "timeout_s": options.get("timeout_s", 10.0),
                     "max_time_s": sup.max_time_s},
        "fingerprint": {},
        "checks": checks_json,
        "findings": ordered,
        "plots": {},
        "summary": summary(checks, findings, options.get("fail_on", "error"), duration),
    })


def finished_checks(sup: Any, record: Mapping[str, Any]) -> list[CheckResult]:
    """Every planned check: kept results, the crash, and a reason for each check left over."""
    waived = set(sup.options.get("ignore", ()))
    profile = sup.options.get("profile", "default")
    crashes = dict(sup.crashes)
    if record.get("importing"):
        crashes[sup.plan[0]["code"]] = {**record, "check": sup.plan[0]["code"]}
    elif record.get("check") and record.get("stopped"):
        crashes[record["check"]] = record
    by_code = {c["code"]: c for c in sup.plan}
    done: dict[str, CheckResult] = {}
    for check in sup.plan:
        code = check["code"]
        if code in sup.results:
            done[code] = check_result_from_json(sup.results[code])
        elif code in crashes and crashes[code].get("stopped"):
            done[code] = CheckResult(code, check["area"], check["title"], Status.ERRORED, crashes[code]["detail"])
        elif code in crashes:
            done[code] = crash_result(check, by_code, crashes[code], waived)
        else:
            done[code] = left_over(check, done, profile, record)
            if code == "global-state-changed" and sup.import_changes is not None and \
                    done[code].reason.startswith("not run"):  # known from the import: no worker needed
                done[code] = global_state(check, sup.import_changes, waived)
    return list(done.values())


def global_state(check: Mapping[str, Any], changes: Mapping[str, Any], waived: set[str]) -> CheckResult:
    from bnconform.supervise.session import describe_changes

    code, area, title = check["code"], check["area"], check["title"]
    if not changes:
        return CheckResult(code, area, title, Status.PASSED)
    words = describe_changes(changes)
    finding = Finding(code=code, severity=Severity(check["severity"]), message=words["message"],
                      expected=words["expected"], observed=words["observed"], why=check["why"],
                      hint=check["hint"], details=words["details"], waived=code in waived)
    return CheckResult(code, area, title, Status.FAILED, "", (finding,))


def crash_result(check: Mapping[str, Any], by_code: Mapping[str, Any], crash: Mapping[str, Any],
                 waived: set[str]) -> CheckResult:
    what = crash["what"]
    code = check["code"] if check["code"] in ROOT_KINDS else (
        "construct-failed" if what.startswith(("construct", "importing")) else "forward-failed")
    owner = by_code[code]
    context = "" if code == check["code"] else f" (while checking {check['code']})"
    error = UserCodeError(what, crash["detail"], crash["kind"])
    details = {"kind": crash["kind"]} | ({"output": crash["output"]} if crash.get("output") else {})
    finding = Finding(
        code=code, severity=Severity(owner["severity"]), message=f"{error}{context}",
        expected="returns normally",
        observed={"timeout": "hangs", "crashed": "ends the process", "raised": "raises"}.get(crash["kind"], "fails"),
        why=owner["why"], hint=owner["hint"], details=details, waived=code in waived,
    )
    return CheckResult(check["code"], check["area"], check["title"], Status.FAILED, "", (finding,))


def left_over(check: Mapping[str, Any], done: Mapping[str, CheckResult], profile: str,
              record: Mapping[str, Any]) -> CheckResult:
    code, area, title = check["code"], check["area"], check["title"]
    if check["profile"] != "default" and profile != check["profile"]:
        return CheckResult(code, area, title, Status.SKIPPED, f"runs with --profile {check['profile']}")
    failing = (Status.FAILED, Status.BLOCKED, Status.ERRORED)
    blocker = next((r for r in check["requires"] if r in done and done[r].status in failing), None)
    if blocker is not None:
        while done[blocker].status == Status.BLOCKED and done[blocker].reason.startswith("blocked by "):
            blocker = done[blocker].reason.removeprefix("blocked by ")
            if blocker not in done:
                break
        return CheckResult(code, area, title, Status.BLOCKED, f"blocked by {blocker}")
    if record.get("stopped"):
        reason = f"not run: {record['detail']}"
    elif record.get("root"):
        reason = f"not run: the worker process died during {record['check']}"
    else:
        reason = f"not run: the worker process died {record.get('restarts', 1) + 1} times"
    return CheckResult(code, area, title, Status.BLOCKED, reason)


def environment() -> dict[str, Any]:
    """bnconform.result.environment without importing torch (its version from the metadata)."""
    import platform
    from importlib import metadata

    try:
        torch_version: str | None = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    return {"python": platform.python_version(), "torch": torch_version, "platform": platform.platform(),
            "cpu": platform.processor() or platform.machine(), "cuda": None, "cudnn": None, "gpu": None}


def target_file(text: str) -> str | None:
    left = text.rpartition(":")[0]
    return left if left.endswith(".py") else None


def version() -> str:
    import bnconform

    return bnconform.__version__
