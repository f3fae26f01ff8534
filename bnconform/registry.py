"""The one place checks are declared: a check's code is its identity, registered once.

A check is a function `fn(ctx) -> Verdict` decorated with `@check(...)`. It reads cached
measurements from the context (probes), compares them with the spec and returns
`passed(...)`, `failed(...)` or `skipped(...)`.

`requires` means "cannot be measured without": it may only name a GATE, a check whose
failure leaves nothing to measure (no instance, no forward at any accepted shape, no
running-statistics tensor, no module on the other device). A check that merely *found*
something never blocks another; the diagnosis step folds consequences under their cause.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bnconform.findings import Severity


@dataclass(frozen=True)
class Verdict:
    """What a check function returns; the runner turns it into a CheckResult."""

    status: str  # "passed" | "failed" | "skipped"
    message: str = ""
    expected: str = ""
    observed: str = ""
    repro: str = ""
    reason: str = ""
    severity: Severity | None = None  # overrides the check's default severity
    device: str | None = None  # where the problem shows, when not the run's main device
    hint: str = ""  # overrides the check's hint: the fix phrased for the spec in use
    details: Mapping[str, Any] = field(default_factory=dict)
    measurements: Mapping[str, Any] = field(default_factory=dict)


def passed(**measurements: Any) -> Verdict:
    return Verdict("passed", measurements=measurements)


def skipped(reason: str) -> Verdict:
    return Verdict("skipped", reason=reason)


def failed(
    message: str,
    *,
    expected: str,
    observed: str,
    repro: str = "",
    severity: Severity | None = None,
    details: Mapping[str, Any] | None = None,
    measurements: Mapping[str, Any] | None = None,
    device: str | None = None,
    hint: str = "",
) -> Verdict:
    return Verdict(
        "failed",
        device=device,
        hint=hint,
        message=message,
        expected=expected,
        observed=observed,
        repro=repro,
        severity=severity,
        details=details or {},
        measurements=measurements or {},
    )


@dataclass(frozen=True)
class CheckSpec:
    """Registration data of one check; `why` and `hint` feed reports and `bnconform explain`."""

    code: str
    area: str
    title: str
    severity: Severity
    why: str
    hint: str
    requires: tuple[str, ...]
    profile: str  # "default" checks always run; "thorough" ones only with --profile thorough
    fn: Callable[[Any], Verdict]


_REGISTRY: dict[str, CheckSpec] = {}

GATES = frozenset({
    "construct-failed", "forward-failed", "running-stats-missing", "device-transfer",
    "sync-rank-failed",  # a rank crashed or hung: there is no distributed result to judge
    "sync-not-synchronized",  # each rank uses its own statistics: no cross-rank statistics to measure
})


def check(
    code: str,
    *,
    area: str,
    title: str,
    severity: Severity | str,
    why: str,
    hint: str,
    requires: tuple[str, ...] = (),
    profile: str = "default",
) -> Callable[[Callable[[Any], Verdict]], Callable[[Any], Verdict]]:
    """Register `fn` as the check for finding code `code`."""

    def register(fn: Callable[[Any], Verdict]) -> Callable[[Any], Verdict]:
        if code in _REGISTRY:
            raise ValueError(f"finding code {code!r} is registered twice")
        not_gates = sorted(set(requires) - GATES)
        if not_gates:
            raise ValueError(f"{code} requires {not_gates}: only a gate ({sorted(GATES)}) can block a check")
        _REGISTRY[code] = CheckSpec(code, area, title, Severity(severity), why, hint, tuple(requires), profile, fn)
        return fn

    return register


def all_checks() -> list[CheckSpec]:
    """Every registered check, in registration order (prerequisites first)."""
    import bnconform.checks  # noqa: F401  (importing registers the checks)

    return list(_REGISTRY.values())


def get_check(code: str) -> CheckSpec:
    all_checks()
    return _REGISTRY[code]


def known_codes() -> list[str]:
    return [c.code for c in all_checks()]
