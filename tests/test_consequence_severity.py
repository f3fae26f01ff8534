"""A consequence is judged with its cause: never more severe, waived with it, and placed by
what the comparison measured before the static table."""

from __future__ import annotations

from pathlib import Path

from bnconform.api import run_check
from bnconform.diagnosis import effective_severities
from bnconform.findings import Finding, Severity

EPS_1E3 = (
    "from torch import nn\n\n\nclass BatchNorm2d(nn.BatchNorm2d):\n"
    "    def __init__(self, num_features, eps=1e-3, momentum=0.1):\n"
    "        super().__init__(num_features, eps, momentum)\n"
)


def finding(code: str, severity: str, **details: object) -> Finding:
    return Finding(code, Severity(severity), code, "", "", "", "", details=details)


def test_a_consequence_is_capped_at_its_causes_severity() -> None:
    capped = effective_severities([finding("eps-default", "warning"), finding("output-mismatch", "error")])
    assert [f.severity for f in capped] == [Severity.WARNING, Severity.WARNING]
    assert capped[1].details["measured_severity"] == "error"


def test_an_error_cause_leaves_its_consequences_alone() -> None:
    capped = effective_severities([finding("reduction-axes", "error"), finding("output-mismatch", "error")])
    assert [f.severity for f in capped] == [Severity.ERROR, Severity.ERROR]


def test_a_mismatch_left_after_accounting_for_the_causes_is_its_own_root() -> None:
    capped = effective_severities([
        finding("eps-default", "warning"), finding("output-mismatch", "error", accounted_for=["eps-default"]),
    ])
    assert capped[1].severity == Severity.ERROR


def test_a_warning_cause_does_not_fail_the_run(tmp_path: Path) -> None:
    (tmp_path / "eps_bn.py").write_text(EPS_1E3)
    result = run_check(f"{tmp_path / 'eps_bn.py'}:BatchNorm2d")
    assert result["summary"]["verdict"] == "pass" and result["summary"]["exit_code"] == 0
    output = next(f for f in result["findings"] if f["code"] == "output-mismatch")
    assert output["caused_by"] == "eps-default" and output["severity"] == "warning"
    failing = run_check(f"{tmp_path / 'eps_bn.py'}:BatchNorm2d", fail_on="warning")
    assert failing["summary"]["exit_code"] == 1


def test_waiving_a_cause_waives_its_consequences(tmp_path: Path) -> None:
    (tmp_path / "eps_bn.py").write_text(EPS_1E3)
    result = run_check(f"{tmp_path / 'eps_bn.py'}:BatchNorm2d", ignore=["eps-default"], fail_on="warning")
    assert result["summary"]["exit_code"] == 0
    output = next(f for f in result["findings"] if f["code"] == "output-mismatch")
    assert output["waived"] and output["details"]["waived_with"] == "eps-default"
