"""Progress events: the tiny event API and the events a real run emits."""

from __future__ import annotations

import json
from typing import Any

from bnconform import progress
from bnconform.api import run_check


def test_listener_receives_events_only_while_installed() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    with progress.listening(lambda event, **data: seen.append((event, data))):
        progress.emit("check", code="x")
    progress.emit("check", code="after")
    assert seen == [("check", {"code": "x"})]


def test_a_failing_listener_does_not_break_the_emitter() -> None:
    def broken(event: str, **data: Any) -> None:
        raise RuntimeError("display gone")

    seen: list[str] = []
    with progress.listening(broken), progress.listening(lambda event, **data: seen.append(event)):
        progress.emit("call", what="forward", timeout_s=1.0)
    assert seen == ["call"]


def test_a_run_emits_each_executed_check_and_paired_calls() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    with progress.listening(lambda event, **data: events.append((event, data))):
        result = run_check("torch.nn:BatchNorm2d")
    checked = [data["code"] for event, data in events if event == "check"]
    order = [c["id"] for c in result["checks"]]
    ran = {c["id"] for c in result["checks"] if c["status"] not in ("skipped", "blocked")}
    assert checked == sorted(checked, key=order.index) and len(set(checked)) == len(checked)
    assert ran <= set(checked)  # a check skipped from inside (no GPU) was still announced
    calls = [e for e, _ in events if e == "call"]
    assert calls and len(calls) == sum(1 for e, _ in events if e == "call-done")
    first_call = next(data for event, data in events if event == "call")
    assert isinstance(first_call["what"], str) and first_call["timeout_s"] == 10.0
    json.dumps(events)  # plain data: a worker process can forward it as is
