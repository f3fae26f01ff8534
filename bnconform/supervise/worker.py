"""The worker process: imports torch and the target, runs the checks, streams everything back.

Started by the supervisor as `python -P -m bnconform.supervise.worker FD`. FD is its end of
a socket pair; fds 0/1/2 are /dev/null and the capture file, so nothing user code prints
reaches the protocol. User calls run in the main thread (RunContext.guarded); the supervisor
learns which call is in flight from the "call" event sent just before it, which is how it
enforces the per-call timeout even when the call never gives the GIL back.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import traceback
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from bnconform import progress
from bnconform.errors import UsageError
from bnconform.supervise import protocol
from bnconform.supervise.session import CURRENT


def main(argv: list[str]) -> None:
    conn = Connection(int(argv[1]))
    os.set_inheritable(conn.fileno(), False)  # a subprocess of the user's must not hold the pipe open
    faulthandler.enable(all_threads=True)  # a segfault leaves its stacks in the capture file
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the supervisor asks before a kill
    job = protocol.receive_job(conn)
    sys.path[:] = job["sys_path"]  # the caller's import path (pytest rootdirs, the cwd) and nothing else
    os.chdir(job["cwd"])
    CURRENT.load(job["prior"])
    with progress.listening(forwarder(conn)):
        message = run(conn, job)
    protocol.send(conn, message)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # a non-daemon thread of the class must not keep the worker alive


def forwarder(conn: Connection) -> progress.Listener:
    def forward(event: str, **data: Any) -> None:
        protocol.send(conn, {"type": "event", "event": event, "data": data})

    return forward


def run(conn: Connection, job: Mapping[str, Any]) -> dict[str, Any]:
    try:
        protocol.send(conn, {"type": "plan", "checks": plan()})
        install_fenced_import(job["target"], job["options"].get("timeout_s", 10.0))
        from bnconform.api import run_check

        result = run_check(job["target"], **job["options"])
        if {f["code"] for f in result["findings"]} & {"construct-failed", "forward-failed"}:
            send_model_note(conn, job)
        return {"type": "result", "result": result}
    except UsageError as error:
        send_model_note(conn, job)
        return {"type": "usage-error", "message": str(error), "exit_code": error.exit_code}
    except ImportKilled as failure:
        return {"type": "import-failed", "detail": failure.detail}
    except BaseException as error:  # noqa: BLE001 - reported as our bug (exit 3), never as a pass
        from bnconform.runner import safe_text

        return {"type": "internal-error", "message": f"{type(error).__name__}: {safe_text(error)}",
                "traceback": traceback.format_exc()}


def plan() -> list[dict[str, Any]]:
    """Every registered check in execution order, so the supervisor can finish a report alone."""
    from bnconform.registry import all_checks
    from bnconform.runner import execution_order

    return [
        {"code": c.code, "area": c.area, "title": c.title, "severity": c.severity.value, "why": c.why,
         "hint": c.hint, "requires": list(c.requires), "profile": c.profile}
        for c in execution_order(all_checks())
    ]


MODEL_CALL = "building the target as a model (for the `bnconform scan` hint)"


def send_model_note(conn: Connection, job: Mapping[str, Any]) -> None:
    """Whether the target is a whole model with norm layers inside: a timed call like any other,
    skipped in a replacement worker when it is what killed the last one."""
    if CURRENT.fatal_for(MODEL_CALL) or not isinstance(job["target"], str):
        return
    from bnconform.scan import describe_model

    progress.emit("call", what=MODEL_CALL, timeout_s=job["options"].get("timeout_s", 10.0))
    try:
        note = describe_model(job["target"], job["options"].get("init") or {})
    except BaseException:  # noqa: BLE001 - only a hint: user code may raise anything
        note = None
    finally:
        progress.emit("call-done")
    if note:
        protocol.send(conn, {"type": "model", "note": note})


class ImportKilled(Exception):  # noqa: N818 - not an error of ours: the target's import did it
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def install_fenced_import(target: str, timeout_s: float) -> None:
    """Make the run's one target import a fenced, announced call.

    The import is user code: the supervisor times it like any call, and whatever global
    torch state it changes is recorded (global-state-changed) and undone before any check.
    SystemExit or KeyboardInterrupt from the module (a module __getattr__ included) is an
    import failure reported as construct-failed, not the end of the run.
    """
    from bnconform import api, fence
    from bnconform.runner import safe_text

    load = api.load_target

    def fenced_load(text: Any) -> Any:
        before = fence.snapshot()
        progress.emit("call", what=f"importing {text}", timeout_s=timeout_s)
        try:
            loaded = load(text)
        except UsageError:
            raise
        except BaseException as error:  # noqa: BLE001 - user module code may raise anything
            raise ImportKilled(f"{type(error).__name__}: {safe_text(error)}") from None
        finally:
            progress.emit("call-done")
        CURRENT.import_changes = fence.changes(before, fence.snapshot())
        progress.emit("import-changes", changes=CURRENT.import_changes)  # kept by the supervisor
        fence.restore(before)
        progress.emit("target-file", file=source_file(loaded))  # kept by the supervisor, for the reports
        return loaded

    api.load_target = fenced_load  # this process runs exactly one check of exactly this target


def source_file(loaded: Any) -> str | None:
    """The .py file defining the loaded target, found here, where it was imported (the caller's
    sys.path and the cwd): the supervisor does not import user code, and its own sys.path may not
    find the module (a console script has no cwd on it). The class's own file when it defines the
    target's name there, else the named module's file (`pkg:BN` with `BN = other.Norm` in pkg)."""
    import functools
    import inspect
    from pathlib import Path

    from bnconform.render.github import definition_line

    if loaded.file:
        return str(loaded.file)
    obj = loaded.obj
    while isinstance(obj, functools.partial):
        obj = obj.func
    candidates: list[Any] = []
    try:
        candidates.append(inspect.getsourcefile(obj))
    except Exception:  # noqa: BLE001, S110 - built in, or a user object that lies about its module
        pass
    candidates.append(getattr(sys.modules.get(loaded.module_part), "__file__", None))
    files = [str(Path(f).resolve()) for f in candidates if isinstance(f, str) and f.endswith(".py")]
    defining = [f for f in files if definition_line(Path(f), loaded.attr_path) is not None]
    return (defining or files or [None])[0]


if __name__ == "__main__":
    main(sys.argv)
