"""The supervisor: runs one check in a worker process and always comes back with a result.

Borrowed from pytest-xdist/pytest-timeout/execnet (shared/PATTERNS.md a): the supervisor never
imports torch or the target; the head of the worker's stream (its last "check" and "call"
events) names what is in flight; a worker that dies or overruns its call budget is killed
(the whole process group), the in-flight call becomes a finding of its check's root kind,
and a fresh worker continues with the checks that remain, the fatal call failing fast there
instead of running again (re-running it would kill each replacement in turn, xdist #1371).
Restarts are capped; past the cap, or when `--max-time` runs out, the supervisor finishes
the report itself from the results it kept.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from bnconform import progress
from bnconform.errors import UsageError
from bnconform.supervise import protocol
from bnconform.supervise.limits import validate_limits

MAX_RESTARTS = 3  # xdist caps restarts too: a class that kills every worker must not loop forever
STARTUP_S = 180.0  # interpreter + torch + bnconform in the worker: not user code, generous on busy CI
IDLE_S = 300.0  # bnconform's own code between two user calls (reference math, hypothesis bookkeeping)
FIRST_CALL_FACTOR = 2.0  # the first call of a kind in each worker may compile or initialize lazily
GRACE_S = 0.5  # after SIGUSR1 (faulthandler dumps the stacks) and before SIGKILL
TAIL_BYTES = 4000
ROOT_CHECKS = ("construct-failed", "forward-failed")


_MODEL_NOTES: dict[str, str] = {}  # target -> "2 normalization layers (...)" when it is a whole model


def model_note(target: str) -> str | None:
    """What the worker found when the target built as a model with norm layers inside (for the
    "check its norm layers with `bnconform scan`" hint); None when it is not one or never ran."""
    return _MODEL_NOTES.get(target)


class WorkerFailed(Exception):  # noqa: N818 - an outcome, carried to the restart logic
    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(record["detail"])
        self.record = record


def run_supervised(
    target: Any, *, max_time_s: float | None = None, **options: Any
) -> dict[str, Any]:
    """`bnconform.api.run_check` in a supervised worker: same options, same result dict.

    `max_time_s` bounds the whole run; the result then says where it stopped. A target given
    as an object (not a "module:Name" string) runs in-process: it cannot be re-imported.
    """
    validate_limits(options.get("seed", 0), options.get("timeout_s", 10.0), max_time_s)
    if not isinstance(target, str) or options.get("world_size") or options.get("distributed"):
        from bnconform.api import run_check  # multi-process runs: bnconform.distributed supervises its ranks

        return run_check(target, **options)
    return Supervision(target, dict(options), max_time_s).run()


@dataclass
class Supervision:
    target: str
    options: dict[str, Any]
    max_time_s: float | None
    started: float = field(default_factory=time.monotonic)
    plan: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    crashes: dict[str, dict[str, Any]] = field(default_factory=dict)
    fatal: dict[str, dict[str, Any]] = field(default_factory=dict)
    import_changes: dict[str, list[str]] | None = None  # what the target's import did to torch's settings
    source_file: str | None = None  # the .py file defining the target, as the worker imported it

    @property
    def timeout_s(self) -> float:
        return float(self.options.get("timeout_s", 10.0))

    def run(self) -> dict[str, Any]:
        for _ in range(MAX_RESTARTS + 1):
            try:
                return self.one_worker()
            except WorkerFailed as failure:
                record = failure.record
                if record.get("stopped") or record.get("importing"):
                    return self.finish_alone(record)
                if record["check"] is not None:
                    self.crashes[record["check"]] = record
                self.fatal[record["what"]] = record
                if record["check"] in ROOT_CHECKS:  # every other check needs it: a new worker would only
                    return self.finish_alone({**record, "root": True})  # re-import and block them all
        return self.finish_alone({"restarts": MAX_RESTARTS})

    def one_worker(self) -> dict[str, Any]:
        with Worker.start(self.job()) as worker:
            return self.pump(worker)

    def job(self) -> dict[str, Any]:
        return {
            "target": self.target, "options": self.options, "cwd": os.getcwd(), "sys_path": list(sys.path),
            "prior": {"results": self.results, "crashes": self.crashes, "fatal": self.fatal},
        }

    def pump(self, worker: Worker) -> dict[str, Any]:
        """Relay the worker's stream until its result; raise WorkerFailed when it dies or overruns."""
        seen: set[str] = set()
        check: str | None = None
        call: str | None = None
        last: str | None = None
        enclosing: list[tuple[str, float]] = []  # (call, budget) of calls a nested call interrupted
        deadline, budget = time.monotonic() + STARTUP_S, STARTUP_S
        while True:
            limit = deadline if self.max_time_s is None else min(deadline, self.started + self.max_time_s)
            message = worker.receive(max(0.0, limit - time.monotonic()))
            if message is None:  # nothing arrived in time
                stopped = self.max_time_s is not None and time.monotonic() >= self.started + self.max_time_s
                raise WorkerFailed(self.overrun(worker, check, call, last, budget, stopped))
            if message.get("eof"):
                raise WorkerFailed(self.died(worker, check, call, last))
            kind = message["type"]
            if kind == "plan":
                self.plan = list(message["checks"])
                deadline = time.monotonic() + IDLE_S
            elif kind == "event":
                event, data = message.get("event"), message.get("data") or {}
                if event == "call":
                    if call is not None:  # a probe measured inside a guarded block: a call inside a call
                        enclosing.append((call, budget))
                    call = last = str(data.get("what"))
                    budget = self.timeout_s * (1.0 if call in seen else FIRST_CALL_FACTOR)
                    seen.add(call)
                    deadline = time.monotonic() + budget
                elif event == "call-done" and enclosing:
                    # The enclosing call's user code goes on: its budget again, never the idle limit
                    # for bnconform's own code (a hang there would wait minutes).
                    call, budget = enclosing.pop()
                    deadline = time.monotonic() + budget
                elif event == "call-done":
                    call, deadline = None, time.monotonic() + IDLE_S
                elif event == "check":
                    check = str(data.get("code"))
                elif event == "import-changes":
                    self.import_changes = dict(data.get("changes") or {})
                elif event == "target-file":
                    self.source_file = data.get("file") or None
                elif event == "check-result":
                    result = data.get("result") or {}
                    self.results[str(result.get("id"))] = result
                    check = None
                # the display shows the budget this supervisor enforces (first call of a kind: 2x)
                progress.emit(str(event), **({**data, "timeout_s": budget} if event == "call" else data))
            elif kind == "model":
                _MODEL_NOTES[self.target] = str(message["note"])
            elif kind == "result":
                return self.located(message["result"])
            elif kind == "usage-error":
                raise UsageError(message["message"])
            elif kind == "import-failed":
                raise WorkerFailed({"check": None, "what": f"importing {self.target}", "detail": message["detail"],
                                    "kind": "raised", "importing": True, "output": worker.tail()})
            elif kind == "internal-error":
                if os.environ.get("BNCONFORM_DEBUG"):  # the worker's own stack; ours below says little
                    sys.stderr.write(f"worker traceback:\n{message.get('traceback', '')}")
                raise RuntimeError(f"in the worker: {message['message']}")

    def in_flight(self, check: str | None, call: str | None, last: str | None) -> tuple[str | None, str]:
        """The check and call a failure belongs to (xdist: the head of the pending list)."""
        if check is None:
            check = next((c["code"] for c in self.plan if c["code"] not in self.results), None)
        what = call or (f"code that ran after the {last}" if last else "setting up the check")
        return check, what

    def died(self, worker: Worker, check: str | None, call: str | None, last: str | None) -> dict[str, Any]:
        code = worker.exit_code()
        if not self.plan:
            raise RuntimeError(f"the worker process ended before it started (exit {code}): {worker.tail()[-300:]}")
        check, what = self.in_flight(check, call, last)
        how = f"was killed by signal {signal_name(-code)}" if code < 0 else f"exited with code {code}"
        return {"check": check, "what": what, "detail": f"the process {how}", "kind": "crashed",
                "importing": what.startswith("importing ") and call is not None, "output": worker.tail()}

    def overrun(self, worker: Worker, check: str | None, call: str | None, last: str | None,
                budget: float, stopped: bool) -> dict[str, Any]:
        worker.stop()
        if not self.plan:
            raise RuntimeError(f"the worker process did not start within {STARTUP_S:g} s")
        check, what = self.in_flight(check, call, last)
        if stopped:
            detail = f"stopped after {self.max_time_s:g} s (--max-time)"
        else:
            detail = f"no result within {budget:g} s; the process was stopped"
        return {"check": check, "what": what, "detail": detail, "kind": "timeout", "stopped": stopped,
                "importing": what.startswith("importing ") and call is not None, "output": worker.tail()}

    def finish_alone(self, record: Mapping[str, Any]) -> dict[str, Any]:
        from bnconform.supervise.fallback import assemble_alone

        return self.located(assemble_alone(self, record, time.monotonic() - self.started))

    def located(self, result: dict[str, Any]) -> dict[str, Any]:
        """The result with target.file set to where the worker found the target's definition
        (module targets too), so the CI annotations point at it without importing user code here."""
        target = result.get("target")
        if self.source_file and isinstance(target, dict) and not target.get("file"):
            target["file"] = self.source_file
        return result


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


class Worker:
    """One worker process in its own process group, with its capture file and pipe."""

    def __init__(self, process: subprocess.Popen[bytes], conn: Connection, capture: IO[bytes]) -> None:
        self.process, self.conn, self.capture = process, conn, capture

    @classmethod
    def start(cls, job: Mapping[str, Any]) -> Worker:
        ours, theirs = socket.socketpair()
        capture = tempfile.TemporaryFile(prefix="bnconform-worker-")
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root,
                                                                         os.environ.get("PYTHONPATH")]))}
        try:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-P", "-m", "bnconform.supervise.worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=capture,
                stderr=subprocess.STDOUT, start_new_session=True, env=env,
            )
        finally:
            theirs.close()
        conn = Connection(ours.detach())
        protocol.send_job(conn, job)
        return cls(process, conn, capture)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        self.conn.close()
        self.capture.close()

    def receive(self, timeout_s: float) -> dict[str, Any] | None:
        """The next message, {"eof": True} when the worker is gone, None on timeout."""
        try:
            if not self.conn.poll(timeout_s):
                return None
            return protocol.receive(self.conn)
        except (EOFError, OSError, ValueError):
            return {"type": "eof", "eof": True}

    def exit_code(self) -> int:
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pipe closed but still alive: it is stopped now
            self.kill()
            return self.process.wait()

    def stop(self) -> None:
        """Ask for a stack dump (faulthandler on SIGUSR1, works inside C code), then kill."""
        try:
            os.kill(self.process.pid, signal.SIGUSR1)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        """SIGKILL the whole group: the worker, its threads, anything it started in its session."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - the kernel owes us this one
            pass

    def tail(self) -> str:
        """The end of what the worker printed (user prints, faulthandler dumps, C messages)."""
        try:
            self.capture.flush()
            size = self.capture.seek(0, os.SEEK_END)
            self.capture.seek(max(0, size - TAIL_BYTES))
            return self.capture.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""


