"""The wire between supervisor and worker: length-prefixed messages over one socket pair.

The job goes down as pickle (the supervisor's own options; nothing untrusted), everything
the worker sends back is JSON, so a worker running hostile code can at worst send a wrong
message, never make the supervisor execute anything. User code never sees the socket: the
worker's fds 1/2 point at a capture file (execnet does the same with its channel), so a
C-level print cannot corrupt the stream.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from bnconform.findings import CheckResult, Finding, Status

MAX_MESSAGE = 64 * 1024 * 1024  # a report is far smaller; anything larger is garbage


def send(conn: Connection, message: Mapping[str, Any]) -> None:
    conn.send_bytes(json.dumps(message, allow_nan=True, default=str).encode("utf-8"))


def receive(conn: Connection) -> dict[str, Any]:
    """The next message; EOFError when the worker is gone, ValueError when it sent garbage."""
    data = json.loads(conn.recv_bytes(MAX_MESSAGE).decode("utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ValueError("malformed message from the worker")
    return data


def send_job(conn: Connection, job: Mapping[str, Any]) -> None:
    conn.send_bytes(pickle.dumps(dict(job)))


def receive_job(conn: Connection) -> dict[str, Any]:
    return pickle.loads(conn.recv_bytes())  # noqa: S301 - written by our own supervisor


def check_result_from_json(data: Mapping[str, Any]) -> CheckResult:
    """The inverse of CheckResult.to_json (the supervisor keeps results as JSON)."""
    return CheckResult(
        check_id=data["id"],
        area=data["area"],
        title=data["title"],
        status=Status(data["status"]),
        reason=data.get("reason", ""),
        findings=tuple(Finding.from_json(f) for f in data.get("findings", ())),
        measurements=dict(data.get("measurements", {})),
        duration_s=float(data.get("duration_s", 0.0)),
    )
