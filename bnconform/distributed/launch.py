"""Spawning N ranks on this machine, watching them, and leaving no process behind.

The spawner hosts the rendezvous store on a free port of 127.0.0.1 (bound to port 0, so two
runs never collide, and listening on loopback only), starts each rank as `python -m bnconform.distributed.worker` in its
own session (so the rank and anything it starts can be killed as one process group), and
reads the ranks' records from the store. A rank that dies or is still running at the
deadline is described by its exit status and the tail of its output (a stack dump is
requested with SIGUSR1 first); every process group is killed before returning.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch.distributed as dist

from bnconform.distributed.group import PREFIX, STARTUP_S, Member, collected, environment_of
from bnconform.distributed.scenarios import scenarios

TAIL_LINES = 40


@dataclass
class Gathered:
    """What came back from the ranks: records by rank, and why the others sent none."""

    world_size: int
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    missing: dict[int, dict[str, str]] = field(default_factory=dict)
    launcher: str = "spawn"


def running_s(world_size: int, timeout_s: float) -> float:
    """Once every rank is up: each scenario's build and watched step, twice over (a peer's hang
    plus its own), and a margin."""
    return len(scenarios(world_size)) * 2 * (timeout_s * 2.5 + 1) + 15


def deadline_s(world_size: int, timeout_s: float) -> float:
    return STARTUP_S + running_s(world_size, timeout_s)


def spawn(config: dict[str, Any], world_size: int, timeout_s: float) -> Gathered:
    store = loopback_store()
    prefixed = dist.PrefixStore(PREFIX, store)
    gathered = Gathered(world_size)
    with tempfile.TemporaryDirectory(prefix="bnconform-ranks-") as logs:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for rank in range(world_size):
                procs.append(start(Member(rank, world_size, rank, "127.0.0.1", store.port, False), config, Path(logs)))
            gathered.records = watch(prefixed, procs, timeout_s)
            prefixed.set("exit", "0")  # ranks leave only now: a peer may still be in a collective
            reap(procs, grace_s=10.0)
        finally:
            kill_all(procs)
        gathered.missing = {r: missing(p, Path(logs) / f"rank{r}.log")
                            for r, p in enumerate(procs) if r not in gathered.records}
    return gathered


def loopback_store() -> dist.TCPStore:
    """The rendezvous store on a port the kernel picks (bind to port 0: runs never collide),
    listening on 127.0.0.1 only: nothing outside this machine can join or read the run."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        port = sock.getsockname()[1]
    except OSError:
        sock.close()
        raise
    fd = sock.detach()  # the store owns the listening socket from here on, and closes it
    try:
        return dist.TCPStore("127.0.0.1", port, is_master=True, wait_for_workers=False, use_libuv=False,
                             master_listen_fd=fd, timeout=dt.timedelta(seconds=STARTUP_S))
    except Exception:
        os.close(fd)
        raise


def start(member: Member, config: dict[str, Any], logs: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **environment_of(member), "BNCONFORM_RANK_CONFIG": json.dumps(config)}
    log = open(logs / f"rank{member.rank}.log", "wb")  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen([sys.executable, "-m", "bnconform.distributed.worker"], env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        log.close()


def watch(store: dist.Store, procs: list[subprocess.Popen[bytes]], timeout_s: float) -> dict[int, dict[str, Any]]:
    """Records as they arrive; stop at the deadline, or a little after a rank died silently
    (its peers then fail in a collective within the collective timeout and report)."""
    world = len(procs)
    deadline = time.monotonic() + deadline_s(world, timeout_s)
    ready = [f"ready/{r}" for r in range(world)]
    records: dict[int, dict[str, Any]] = {}
    while len(records) < world and time.monotonic() < deadline:
        if ready and store.check(ready):  # all imported and joined: the short budget starts now
            deadline, ready = min(deadline, time.monotonic() + running_s(world, timeout_s)), []
        records = collected(store, world)
        silent_dead = [r for r, p in enumerate(procs) if p.poll() is not None and r not in records]
        if silent_dead:
            deadline = min(deadline, time.monotonic() + 2 * (timeout_s * 1.5 + 1) + 5)
        time.sleep(0.1)
    return collected(store, world)


def reap(procs: list[subprocess.Popen[bytes]], grace_s: float) -> None:
    end = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass


def kill_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """Dump the stacks of ranks still running, then kill every rank's process group."""
    alive = [p for p in procs if p.poll() is None]
    for proc in alive:
        signal_group(proc, signal.SIGUSR1)  # the worker registered faulthandler for it
    if alive:
        time.sleep(0.5)
    for proc in procs:
        signal_group(proc, signal.SIGKILL)  # also the rank's own children, if any are left
        proc.wait()


def signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def missing(proc: subprocess.Popen[bytes], log: Path) -> dict[str, str]:
    """Why rank sent no record: its exit status and the tail of its output."""
    code = proc.returncode
    if code is not None and code < 0:
        how = f"killed by {signal.Signals(-code).name}" if -code in signal.valid_signals() else f"signal {-code}"
        how = "still running at the deadline: killed" if code == -signal.SIGKILL else how
    else:
        how = f"exited with code {code} without reporting"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return {"kind": "died", "what": "the rank's process", "message": how,
            "traceback": "\n".join(lines[-TAIL_LINES:]), "scenario": ""}
