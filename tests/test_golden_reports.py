"""Every word a user reads, pinned: the full result of each corpus and wild case against a
reviewed copy in tests/golden/ (issue 13).

test_corpus and test_wild assert which codes fire; they cannot notice a finding that says the
wrong thing: an expected value computed with the wrong estimator, an observed ratio printed from
the wrong field, a skip reason swapped, a repro that no longer shows the bug, a consequence filed
under another cause. Here each check's status, reason and measurements and each finding's
message, expected, observed, repro, details and cause must equal the reviewed copy.

When a change is meant to alter what users read, regenerate and review the diff like code:

    BNCONFORM_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_reports.py

Floats are compared to 6 significant digits (the run is seeded and single-threaded; the digits
beyond that are the machine's, not the class's). A rounding error is the machine's in every digit:
torch's CPU kernels take another path on another vector unit (AVX-512 against AVX2 moved the
float32 eval output error from 2.6e-7 to 4.3e-7), so a check's measured "error", "allowed" and
"relative_error" are compared to within a factor of ROUNDING_FACTOR instead; the threshold tests
pin those values, and a finding's words and numbers are still compared digit for digit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch

from bnconform.api import run_check
from tests.test_corpus import CASES as CORPUS_CASES
from tests.test_wild import CASES as WILD_CASES

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("BNCONFORM_UPDATE_GOLDEN") == "1"
ROUNDING_KEYS = frozenset({"error", "allowed", "relative_error"})
ROUNDING_FACTOR = 4.0


class GoldenCase(NamedTuple):
    name: str
    target: str
    spec: str
    init: Mapping[str, Any] | None


def cases() -> list[GoldenCase]:
    found = [
        GoldenCase("torch-BatchNorm1d", "torch.nn:BatchNorm1d", "pytorch", None),
        GoldenCase("torch-BatchNorm2d", "torch.nn:BatchNorm2d", "pytorch", None),
        GoldenCase("torch-BatchNorm3d", "torch.nn:BatchNorm3d", "pytorch", None),
        GoldenCase("corpus-reference", "tests.corpus.reference:BatchNorm", "pytorch", None),
        GoldenCase("corpus-keras_reference", "tests.corpus.keras_reference:BatchNorm", "keras", None),
        GoldenCase("tutorial", "bnconform.examples.tutorial:BatchNorm", "pytorch", None),
        # Correct code judged by another convention: every difference is a true finding.
        GoldenCase("torch-BatchNorm2d-under-keras", "torch.nn:BatchNorm2d", "keras", None),
        GoldenCase("torch-BatchNorm2d-under-mxnet", "torch.nn:BatchNorm2d", "mxnet", None),
        GoldenCase("torch-BatchNorm1d-under-flax", "torch.nn:BatchNorm1d", "flax", None),
    ]
    found += [GoldenCase(f"corpus-{c.module}", f"tests.corpus.{c.module}:BatchNorm", c.spec, c.init)
              for c in CORPUS_CASES]
    found += [GoldenCase(f"wild-{c.target.removeprefix('tests.wild.').replace(':', '-')}", c.target, c.spec, c.init)
              for c in WILD_CASES]
    return found


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, Mapping):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item) for item in value]
    return value


def canonical(result: Mapping[str, Any]) -> dict[str, Any]:
    """What a user reads of a result, without timings and the environment."""
    checks = [{key: check[key] for key in ("id", "status", "reason", "measurements")} for check in result["checks"]]
    findings = [
        {key: finding.get(key) for key in ("code", "severity", "message", "expected", "observed", "repro", "device",
                                           "details", "waived", "caused_by", "consequences")}
        for finding in result["findings"]
    ]
    summary = {key: value for key, value in result["summary"].items() if "duration" not in key}
    return rounded({"domain": result["domain"], "fingerprint": result["fingerprint"], "checks": checks,
                    "findings": findings, "summary": summary})


def same_measurements(seen: Any, reviewed: Any, key: str = "") -> bool:
    """Equal, except that rounding errors (ROUNDING_KEYS) need only agree within ROUNDING_FACTOR."""
    if isinstance(seen, Mapping) and isinstance(reviewed, Mapping):
        return seen.keys() == reviewed.keys() and all(same_measurements(seen[k], reviewed[k], k) for k in seen)
    if key in ROUNDING_KEYS and isinstance(seen, float) and isinstance(reviewed, float) and seen != reviewed:
        low, high = sorted((abs(seen), abs(reviewed)))
        return (seen > 0) == (reviewed > 0) and low > 0 and high <= ROUNDING_FACTOR * low
    return seen == reviewed


def same_check(seen: Mapping[str, Any], reviewed: Mapping[str, Any]) -> bool:
    return ({k: v for k, v in seen.items() if k != "measurements"}
            == {k: v for k, v in reviewed.items() if k != "measurements"}
            and same_measurements(seen.get("measurements"), reviewed.get("measurements")))


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_the_report_says_what_the_reviewed_copy_says(case: GoldenCase) -> None:
    init = dict(case.init) if case.init else None
    torch.manual_seed(0)  # a class that initialises randomly is constructed before the run seeds
    observed = canonical(run_check(case.target, spec=case.spec, init=init, seed=0))
    path = GOLDEN / f"{case.name}.json"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(observed, indent=1, sort_keys=True) + "\n")
    assert path.exists(), f"no reviewed copy {path.name}: run with BNCONFORM_UPDATE_GOLDEN=1 and review it"
    expected = json.loads(path.read_text())
    for section in ("domain", "fingerprint", "summary"):
        assert observed[section] == expected[section], section
    assert [c["id"] for c in observed["checks"]] == [c["id"] for c in expected["checks"]]
    for seen, reviewed in zip(observed["checks"], expected["checks"], strict=True):
        assert same_check(seen, reviewed), f"check {seen['id']}: {seen} != {reviewed}"
    assert [f["code"] for f in observed["findings"]] == [f["code"] for f in expected["findings"]]
    for seen, reviewed in zip(observed["findings"], expected["findings"], strict=True):
        assert seen == reviewed, f"finding {seen['code']}"


@pytest.mark.parametrize(("seen", "reviewed", "same"), [
    (2.6e-7, 4.3e-7, True),      # float32 eval output, AVX-512 against AVX2
    (1.0e-7, 4.0e-7, True),
    (1.0e-7, 4.01e-7, False),    # a tolerance ten times off is not the machine's
    (4.01e-7, 1.0e-7, False),
    (0.0, 1.0e-7, False),
    (-1.0e-7, 1.0e-7, False),
    (0.0, 0.0, True),
])
def test_rounding_errors_agree_within_a_factor_and_nothing_else_does(seen: float, reviewed: float,
                                                                    same: bool) -> None:
    assert same_check({"id": "x", "measurements": {"eval": {"error": seen}}},
                      {"id": "x", "measurements": {"eval": {"error": reviewed}}}) is same
    assert same_check({"id": "x", "measurements": {"eval": {"ratio": seen}}},
                      {"id": "x", "measurements": {"eval": {"ratio": reviewed}}}) is (seen == reviewed)
    assert same_check({"id": "x", "status": "passed", "measurements": {}},
                      {"id": "x", "status": "failed", "measurements": {}}) is False


def test_every_reviewed_copy_belongs_to_a_case() -> None:
    assert {p.stem for p in GOLDEN.glob("*.json")} == {c.name for c in cases()}
