"""Real library layers (tests/library/): torchvision's and timm's frozen and fused BatchNorms and
torch.nn.SyncBatchNorm, as scripts/check-library-layers.sh checked them (torch 2.14.1,
torchvision 0.29.1, timm 1.0.31). Every finding is judged in tests/library/README.md.

Where torchvision is importable (the script's venv), the checks run again and must report the
committed codes; a finding judged false may disappear (the lead fixing it), nothing else may
change. Everywhere else the committed results themselves are verified: they parse, name only
registered codes, and agree with their own summary and with the README table; the findings
judged false in the first run (FIXED_FALSE) stay absent.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bnconform.api import run_check
from bnconform.errors import UsageError
from bnconform.registry import known_codes

LIBRARY = Path(__file__).parent / "library"
RESULTS = LIBRARY / "results"
SEVERITIES = ("error", "warning", "info")

# Findings the README judges false (a careful reader would not claim them of the layer).
FIXED_FALSE: dict[str, set[str]] = {  # judged false in the first run, fixed since (README)
    # BatchNorm2d loads this state_dict strictly with equal values (it adds num_batches_tracked)
    "tv-frozenbn2d-pytorch": {"state-dict"},
    # the far running statistics made the fused ReLU zero whole channels: read as "constant"
    "timm-frozenbnact2d-frozen": {"train-uses-running-stats", "affine-apply"},
}


def load_results() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}


RESULT_NAMES = sorted(p.stem for p in RESULTS.glob("*.json"))


def codes(result: dict[str, Any]) -> set[str]:
    return {f["code"] for f in result.get("findings", [])}


def test_results_exist_for_every_library_family() -> None:
    names = set(RESULT_NAMES)
    assert {"tv-frozenbn2d-frozen", "tv-frozenbn2d-pytorch", "timm-bnact2d-relu-pytorch",
            "timm-frozenbnact2d-frozen", "torch-syncbn-pytorch", "torch-syncbn-ws2"} <= names


@pytest.mark.parametrize("name", RESULT_NAMES)
def test_committed_result_is_consistent(name: str) -> None:
    result = load_results()[name]
    case = result["case"]
    assert case["name"] == name
    assert case["packages"]["torch"] == "2.14.1"
    if "usage_error" in result:
        # A usage error is one clear line and exit 2 (no report is written).
        assert case["exit_code"] == 2
        assert result["usage_error"].startswith("bnconform: error: ")
        assert "\n" not in result["usage_error"]
        return
    assert result["schema"] == "bnconform.result/1"
    assert result["spec"] == case["spec"]
    registered = set(known_codes())
    found = result["findings"]
    assert {f["code"] for f in found} <= registered
    assert {f["severity"] for f in found} <= set(SEVERITIES)
    # Every cause and consequence named is a finding of the same report.
    present = codes(result)
    for f in found:
        assert f["caused_by"] is None or f["caused_by"] in present, f
        consequences = {c["code"] for c in f.get("consequences") or []}
        assert consequences <= present, f
        assert all(g["caused_by"] == f["code"] for g in found if g["code"] in consequences), f
    # Every finding's check failed, and the summary counts the findings it lists.
    assert all(result["checks"][f["code"]].startswith("failed") for f in found)
    counts = Counter(f["severity"] for f in found)
    summary = result["summary"]
    assert {s: summary["counts"][s] for s in SEVERITIES} == {s: counts.get(s, 0) for s in SEVERITIES}
    failing = counts.get("error", 0) > 0
    assert summary["verdict"] == ("fail" if failing else "pass")
    assert summary["exit_code"] == case["exit_code"] == (1 if failing else 0)


def readme_rows() -> dict[str, set[str]]:
    """Result name -> the finding codes its README table rows judge."""
    rows: dict[str, set[str]] = {}
    for line in (LIBRARY / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*`([\w-]+)`\s*\|", line)
        if not m:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        judged = rows.setdefault(m.group(1), set())
        code = re.match(r"`([\w-]+)`", cells[3]) if len(cells) > 3 else None
        if code:
            judged.add(code.group(1))
    return rows


def test_readme_judges_every_committed_finding() -> None:
    rows = readme_rows()
    results = load_results()
    assert set(rows) == set(results)
    for name, result in results.items():
        assert rows[name] == codes(result), name


def test_findings_once_judged_false_stay_fixed() -> None:
    results = load_results()
    for name, false in FIXED_FALSE.items():
        assert not false & codes(results[name]), name
    assert "**false**" not in (LIBRARY / "README.md").read_text().split("## Wall time")[0]


def needs(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("name", RESULT_NAMES)
def test_live_check_reports_the_committed_codes(name: str) -> None:
    # The results were produced with torch 2.14.1 + torchvision 0.29.1 (the script's venv); the
    # project venv cannot import torchvision, and the consistency tests above cover it there.
    pytest.importorskip("torchvision")
    committed = load_results()[name]
    case = committed["case"]
    if case["target"].startswith("timm.") and not needs("timm"):
        pytest.skip("timm is not installed")
    init = {k: ast.literal_eval(v) for k, v in case["init"].items()}
    world_size = 2 if "--world-size 2" in case["options"] else None
    if "usage_error" in committed:
        with pytest.raises(UsageError):
            run_check(case["target"], spec=case["spec"], init=init, world_size=world_size)
        return
    result = run_check(case["target"], spec=case["spec"], init=init, world_size=world_size)
    observed = {f["code"]: f["severity"] for f in result["findings"]}
    expected = {f["code"]: f["severity"] for f in committed["findings"]}
    assert set(observed) <= set(expected), f"new findings: {set(observed) - set(expected)}"
    gone = set(expected) - set(observed)
    assert not gone, f"findings judged true disappeared: {gone}"
    assert not set(observed) & FIXED_FALSE.get(name, set()), "a fixed false finding is back"
    assert {c: observed[c] for c in observed} == {c: expected[c] for c in observed}
