"""Waivers: a finding code accepted on purpose, with a reason, optionally for some targets until a date.

A waived finding is still reported (marked waived, with its reason) and never fails a run.
A waiver is itself reported: `used` (it waived a finding), `stale` (its check ran and found
nothing: the waiver can go), `unverified` (its check did not run: skipped, blocked, errored,
so nothing is proven either way), `expired` (past its date: not applied) or `unmatched`
(its target pattern matched no checked target). Stale, expired and unmatched are warnings.
Importing this loads no torch.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WARN_STATUSES = ("stale", "expired", "unmatched")


@dataclass(frozen=True)
class Waiver:
    """Accept finding `code` for targets matching the glob `target` (all when None) until `expires`."""

    code: str
    reason: str
    target: str | None = None
    expires: dt.date | None = None
    source: str = ""  # "pyproject.toml:12", or "command line" for --ignore

    def applies_to(self, target: str) -> bool:
        if self.target is None:
            return True
        pattern, checked = file_form(self.target), file_form(target)
        return fnmatch.fnmatchcase(checked, pattern) or checked == pattern

    def expired(self, today: dt.date | None = None) -> bool:
        return self.expires is not None and (today or dt.date.today()) > self.expires

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "reason": self.reason, "target": self.target,
                "expires": self.expires.isoformat() if self.expires else None, "source": self.source}


def file_form(target: str) -> str:
    """A file target ("path/bn.py:Name") with its path absolute and normalised, so a target typed
    relative to the working directory matches a waiver resolved relative to its config file
    ("mynet/bn.py:BN" and "/proj/cfg/../mynet/bn.py:BN" alike); other targets are unchanged."""
    left, sep, name = target.rpartition(":")
    if not sep or not left.endswith(".py") or left.startswith("*"):  # "*/bn.py:BN" matches anywhere
        return target
    return f"{os.path.normpath(os.path.abspath(left))}:{name}"


def ignore_codes(waivers: Iterable[Waiver], target: str, today: dt.date | None = None) -> list[str]:
    """The codes to pass to the runner as waived for this target (expired waivers do not count)."""
    return sorted({w.code for w in waivers if w.applies_to(target) and not w.expired(today)})


def apply_waivers(result: dict[str, Any], waivers: Sequence[Waiver], today: dt.date | None = None) -> dict[str, Any]:
    """Add each applied waiver's reason to its findings and the waivers' status to settings["waivers"].

    The runner already marked the findings waived (their codes went in as `ignore`); this only
    explains them, so the summary and verdict computed by the runner stay the ones reported.
    """
    target = str(result["target"]["text"])
    relevant = [w for w in waivers if w.applies_to(target)]
    by_code = {w.code: w for w in relevant if not w.expired(today)}
    every = [*result["findings"], *(f for check in result["checks"] for f in check["findings"])]
    for finding in every:
        if not finding.get("waived"):
            continue
        cause = (finding.get("details") or {}).get("waived_with")  # the diagnosis waived it with its cause
        if finding["code"] in by_code:
            waiver = by_code[finding["code"]]
            finding["waiver"] = {"reason": waiver.reason, "source": waiver.source}
        elif cause in by_code:
            waiver = by_code[cause]
            finding["waiver"] = {"reason": f"waived with its cause {cause}: {waiver.reason}", "source": waiver.source}
    result["settings"]["waivers"] = [{**w.to_json(), **status(w, result, today)} for w in relevant]
    return result


def status(waiver: Waiver, result: Mapping[str, Any], today: dt.date | None = None) -> dict[str, str]:
    """{"status": ..., "message": ...} for one waiver against one target's result."""
    if waiver.expired(today):
        return {"status": "expired", "message": f"expired on {waiver.expires}; the finding is no longer waived"}
    if any(f["code"] == waiver.code for f in result["findings"]):
        return {"status": "used", "message": f"waives {waiver.code}: {waiver.reason}"}
    check = next((c for c in result["checks"] if c["id"] == waiver.code), None)
    if check is not None and check["status"] == "passed":
        return {"status": "stale", "message": f"{waiver.code} passed: the waived problem is gone; remove the waiver"}
    why = check["reason"] or check["status"] if check is not None else "no such check ran"
    return {"status": "unverified", "message": f"{waiver.code} did not run ({why}); nothing proven either way"}


def unmatched(waivers: Iterable[Waiver], targets: Iterable[str]) -> list[Waiver]:
    """Waivers whose target pattern matches none of the targets checked."""
    checked = list(targets)
    return [w for w in waivers if w.target is not None and not any(w.applies_to(t) for t in checked)]


def warnings_for(result: Mapping[str, Any]) -> list[str]:
    """One line per stale or expired waiver of a result, naming where the waiver is written."""
    lines = []
    for entry in result.get("settings", {}).get("waivers", []):
        if entry["status"] in WARN_STATUSES:
            where = f"{entry['source']}: " if entry.get("source") else ""
            lines.append(f"{where}waiver {entry['code']} for {result['target']['text']} is {entry['status']}: "
                         f"{entry['message']}")
    return lines
