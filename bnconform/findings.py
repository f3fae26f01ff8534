"""Typed results of checks. Only renderers turn these into text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # not applicable (spec or class does not have the feature, no CUDA, ...)
    BLOCKED = "blocked"  # a prerequisite check failed; `reason` names it
    ERRORED = "errored"  # the check itself could not run (internal error); never silent


@dataclass(frozen=True)
class Finding:
    """One problem, earned by a measurement.

    `expected` and `observed` are short human-readable values in the spec's vocabulary
    ("new-batch weight 0.1" / "new-batch weight 0.9"); `details` holds raw numbers.
    """

    code: str
    severity: Severity
    message: str
    expected: str
    observed: str
    why: str
    hint: str
    repro: str = ""
    device: str = "cpu"
    details: Mapping[str, Any] = field(default_factory=dict)
    waived: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "expected": self.expected,
            "observed": self.observed,
            "why": self.why,
            "hint": self.hint,
            "repro": self.repro,
            "device": self.device,
            "details": dict(self.details),
            "waived": self.waived,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finding:
        return cls(**{**data, "severity": Severity(data["severity"]), "details": data["details"]})


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one registered check (its id is its finding code)."""

    check_id: str
    area: str
    title: str
    status: Status
    reason: str = ""
    findings: tuple[Finding, ...] = ()
    measurements: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.check_id,
            "area": self.area,
            "title": self.title,
            "status": self.status.value,
            "reason": self.reason,
            "findings": [f.to_json() for f in self.findings],
            "measurements": dict(self.measurements),
            "duration_s": round(self.duration_s, 6),
        }
