"""Waiver status is decided from what the check did: used, stale, unverified, expired, unmatched."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from bnconform.waivers import Waiver, apply_waivers, ignore_codes, unmatched, warnings_for

TODAY = dt.date(2026, 6, 1)


def result() -> dict[str, Any]:
    data = json.loads((Path(__file__).parent / "data" / "sample_result_failing.json").read_text())
    for finding in data["findings"]:
        finding["waived"] = finding["code"] == "momentum-inverted"
    return data


def statuses(waivers: list[Waiver]) -> dict[str, str]:
    applied = apply_waivers(result(), waivers, TODAY)
    return {w["code"]: w["status"] for w in applied["settings"]["waivers"]}


def test_used_waiver_explains_its_finding_and_the_finding_stays_reported() -> None:
    waiver = Waiver("momentum-inverted", "legacy checkpoints", source="pyproject.toml:9")
    applied = apply_waivers(result(), [waiver], TODAY)
    (finding,) = [f for f in applied["findings"] if f["code"] == "momentum-inverted"]
    assert finding["waived"] and finding["waiver"] == {"reason": "legacy checkpoints", "source": "pyproject.toml:9"}
    assert applied["settings"]["waivers"][0]["status"] == "used"
    assert warnings_for(applied) == []


def test_a_finding_waived_with_its_cause_carries_the_causes_reason() -> None:
    data = result()
    consequence = next(f for f in data["findings"] if not f["waived"])
    consequence.update(waived=True, details={**consequence["details"], "waived_with": "momentum-inverted"})
    apply_waivers(data, [Waiver("momentum-inverted", "legacy", source="pyproject.toml:9")], TODAY)
    assert consequence["waiver"] == {"reason": "waived with its cause momentum-inverted: legacy",
                                     "source": "pyproject.toml:9"}


def test_stale_unverified_and_expired_are_told_apart() -> None:
    data = result()
    passed = next(c["id"] for c in data["checks"] if c["status"] == "passed")
    not_run = next(c["id"] for c in data["checks"] if c["status"] in ("skipped", "blocked"))
    got = statuses([Waiver(passed, "r"), Waiver(not_run, "r"),
                    Waiver("running-stats-shape", "r", expires=dt.date(2026, 1, 1))])
    assert got == {passed: "stale", not_run: "unverified", "running-stats-shape": "expired"}


def test_stale_and_expired_waivers_are_warnings_naming_their_source() -> None:
    data = result()
    passed = next(c["id"] for c in data["checks"] if c["status"] == "passed")
    applied = apply_waivers(data, [Waiver(passed, "r", source="pyproject.toml:20")], TODAY)
    (line,) = warnings_for(applied)
    assert line.startswith(f"pyproject.toml:20: waiver {passed} for ") and "is stale" in line


def test_target_globs_expiry_and_unmatched_waivers() -> None:
    waivers = [Waiver("eps-default", "r", target="pkg.layers:*"),
               Waiver("eps-placement", "r", expires=dt.date(2026, 1, 1)),
               Waiver("momentum-default", "r", target="other:*")]
    assert ignore_codes(waivers, "pkg.layers:BN", TODAY) == ["eps-default"]
    assert ignore_codes(waivers, "torch.nn:BatchNorm2d", TODAY) == []
    assert unmatched(waivers, ["pkg.layers:BN"]) == [waivers[2]]


def test_a_file_waiver_matches_the_same_file_typed_relative_to_the_working_directory(
        tmp_path: Path, monkeypatch: Any) -> None:
    """The config resolves `mynet/bn.py:Keep*` against its own folder; a user in that folder types
    `bnconform check mynet/bn.py:KeepdimBN`. Both name one file."""
    project = tmp_path / "proj"
    (project / "mynet").mkdir(parents=True)
    monkeypatch.chdir(project)
    waiver = Waiver("running-stats-shape", "r", target=f"{project / 'cfg' / '..' / 'mynet' / 'bn.py'}:Keep*")
    assert waiver.applies_to("mynet/bn.py:KeepdimBN")
    assert waiver.applies_to(f"{project}/mynet/bn.py:KeepdimBN")
    assert not waiver.applies_to("other/bn.py:KeepdimBN") and not waiver.applies_to("mynet/bn.py:BN")
    anywhere = Waiver("running-stats-shape", "r", target="*/bn.py:Keep*")
    assert anywhere.applies_to("/elsewhere/bn.py:KeepdimBN") and anywhere.applies_to("mynet/bn.py:KeepdimBN")
    assert Waiver("eps-default", "r", target="mynet.bn:Keep*").applies_to("mynet.bn:KeepdimBN")
