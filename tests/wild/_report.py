"""Print the corpus table for tests/wild/README.md: what the checker says on each entry.

Run: .venv/bin/python -m tests.wild._report [--detail] [NAME_FILTER]
"""

from __future__ import annotations

import json
import sys

from bnconform.api import run_check
from tests.test_wild import CASES


def row(case, result) -> dict:
    loud = sorted({f["code"] for f in result["findings"] if f["severity"] in ("error", "warning")})
    info = sorted({f["code"] for f in result["findings"] if f["severity"] == "info"} - set(loud))
    found = set(loud) | set(info)
    return {
        "target": case.target.removeprefix("tests.wild."),
        "expected": sorted(case.expected), "found": loud, "info": info,
        "missing": sorted(case.expected - set(loud)), "false": sorted(case.false & found),
        "errored": [c["id"] for c in result["checks"] if c["status"] == "errored"],
        "blocked": [c["id"] for c in result["checks"] if c["status"] == "blocked"],
        "clean_violation": sorted(loud) if not case.expected and loud else [],
    }


def main(argv: list[str]) -> None:
    detail = "--detail" in argv
    names = [a for a in argv if not a.startswith("--")]
    for case in CASES:
        if names and not any(n in case.target for n in names):
            continue
        try:
            result = run_check(case.target, spec=case.spec, init=case.init, seed=0)
        except Exception as exc:  # a crash of the checker itself is a result here
            print(json.dumps({"target": case.target, "crash": repr(exc)[:300]}))
            continue
        print(json.dumps(row(case, result)))
        if detail:
            for f in result["findings"]:
                print(f"    {f['severity']:7} {f['code']}: {f['message'][:220]}")
            for c in result["checks"]:
                if c["status"] in ("errored", "blocked", "skipped"):
                    print(f"    [{c['status']}] {c['id']}: {str(c.get('reason', ''))[:200]}")


if __name__ == "__main__":
    main(sys.argv[1:])
