"""The wild corpus (tests/wild/): BatchNorms as public code writes them. Each entry states the
codes a careful reader expects (EXPECTED) and the codes that would be false claims (FALSE);
the checker must report every expected code, no false one, and no errored check. An entry
with an empty EXPECTED is correct code: no error and no warning at all."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any, NamedTuple

import pytest

import tests.wild
from bnconform.api import run_check
from bnconform.registry import known_codes

# Codes the team is adding with issue 8; they count as known before they are registered.
NEW_CODES = {"batch-size-constraint", "momentum-none", "input-modified"}


class WildCase(NamedTuple):
    target: str  # tests.wild.<module>:<Name>
    expected: frozenset[str]
    false: frozenset[str]
    spec: str
    init: Mapping[str, Any] | None


def collect() -> list[WildCase]:
    """Every object in tests/wild/* that declares EXPECTED in its own namespace (SPEC and INIT
    are inherited: a subclass is judged like its base unless it says otherwise)."""
    cases = []
    for info in pkgutil.iter_modules(tests.wild.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"tests.wild.{info.name}")
        for name, obj in vars(module).items():
            own = getattr(obj, "__dict__", {})
            if "EXPECTED" not in own:
                continue
            cases.append(WildCase(
                f"tests.wild.{info.name}:{name}", frozenset(own["EXPECTED"]),
                frozenset(own.get("FALSE", ())), getattr(obj, "SPEC", "pytorch"), getattr(obj, "INIT", None),
            ))
    return cases


CASES = collect()


def describe(result: Mapping[str, Any]) -> str:
    lines = [f"{f['severity']:7} {f['code']}: {f['message'][:150]}" for f in result["findings"]]
    lines += [f"{c['status']:7} {c['id']}: {c.get('reason', '')[:150]}"
              for c in result["checks"] if c["status"] in ("errored", "blocked")]
    return "\n".join(lines) or "(no findings)"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.target.removeprefix("tests.wild."))
def test_wild_case(case: WildCase) -> None:
    init = dict(case.init) if case.init else None
    result = run_check(case.target, spec=case.spec, init=init, seed=0)
    found = {f["code"] for f in result["findings"]}
    loud = {f["code"] for f in result["findings"] if f["severity"] in ("error", "warning")}
    errored = [c["id"] for c in result["checks"] if c["status"] == "errored"]
    report = describe(result)
    assert not errored, f"checks errored {errored}:\n{report}"
    assert case.expected <= loud, f"missing {sorted(case.expected - loud)}:\n{report}"
    assert not case.false & found, f"false claims {sorted(case.false & found)}:\n{report}"
    if not case.expected:
        assert not loud, f"correct code got {sorted(loud)}:\n{report}"


def test_corpus_is_big_and_uses_known_codes() -> None:
    assert len(CASES) >= 28
    known = set(known_codes()) | NEW_CODES
    for case in CASES:
        assert (case.expected | case.false) <= known, case.target
        assert not case.expected & case.false, case.target
