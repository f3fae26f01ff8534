"""SyncBatchNorm conformance across processes (torch.distributed).

`run(...)` is what `run_check(..., world_size=N)` and `run_check(..., distributed=True)`
delegate to. With `world_size` it spawns N ranks on this machine (launch.py); with
`distributed` it joins the group an outside launcher (torchrun, SLURM) set up. Either way
each rank trains one step per scenario on its shard of a global batch (driver.py), the
records come back through the rendezvous store, the judge compares them with the spec's
float64 reference on the full batch (expect.py, judge.py), and the ordinary single-process
run then executes with that outcome current, so the sync checks (checks/sync.py) report
their findings in the same result, which gains a "distributed" section (report.py).

Importing this package loads no torch: renderers import report.py from it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from bnconform.errors import UsageError

EXIT_WAIT_S = 1800.0  # ranks > 0 wait this long for rank 0's single-process checks and reports
ACK_WAIT_S = 30.0


def run(
    run_check: Callable[..., dict[str, Any]], target: Any, *, world_size: int | None, distributed: bool,
    **options: Any,
) -> dict[str, Any]:
    """The full result of `target` with the sync checks judged over `world_size` (or the launcher's) ranks."""
    config = validate(target, world_size, distributed, options)
    started = time.perf_counter()
    if distributed:
        return joined(run_check, target, config, options, started)
    from bnconform.distributed.launch import spawn

    gathered = spawn(config, world_size or 0, config["timeout_s"])
    return judged(run_check, target, gathered, config, options, started)


def validate(target: Any, world_size: int | None, distributed: bool, options: Mapping[str, Any]) -> dict[str, Any]:
    """Every usage problem before a process starts (exit code 2); the ranks' configuration."""
    if distributed and world_size is not None:
        raise UsageError("--world-size and --distributed exclude each other: spawn ranks here, or join a launcher's")
    if not distributed and (isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 2):
        raise UsageError(f"--world-size {world_size!r} must be an integer >= 2")
    if not isinstance(target, str):
        raise UsageError("--world-size/--distributed need the target as a 'module:Name' or 'file.py:Name' string "
                         "(every rank imports it)")
    timeout = options.get("timeout_s", 10.0)
    if not 0 < timeout < float("inf"):
        raise UsageError(f"--timeout {timeout:g} must be a positive number of seconds")
    init = dict(options.get("init") or {})
    validate_target(target, options, init, world_size or int(os.environ.get("LOCAL_WORLD_SIZE", "0") or 0))
    return {"target": target, "spec": options.get("spec", "pytorch"), "init": repr(init),
            "seed": options.get("seed", 0), "device": options.get("device", "cpu"), "timeout_s": timeout,
            "exit_wait_s": EXIT_WAIT_S}


def validate_target(target: str, options: Mapping[str, Any], init: dict[str, object], local_world: int) -> None:
    """The target loads and builds; the ranks' device can run it (torch's SyncBatchNorm needs GPUs)."""
    import torch

    from bnconform.distributed.driver import make_context
    from bnconform.distributed.group import gpus_for_all

    device = options.get("device", "cpu")
    on_gpus = device in ("cuda", "auto") and gpus_for_all(local_world)
    if device == "cuda" and not on_gpus:
        raise UsageError(f"--device cuda with {local_world} ranks here: nccl needs one GPU per rank; use "
                         "--device cpu (gloo) or fewer ranks")
    obj = make_context(target, options.get("spec", "pytorch"), init, 0, "cpu", 1.0).builder.target.obj
    if not on_gpus and getattr(obj, "forward", None) is torch.nn.SyncBatchNorm.forward:
        raise UsageError(f"{target} trains with torch.nn.SyncBatchNorm's forward, which accepts only GPU tensors "
                         "once a process group exists; run it with --device cuda and one GPU per rank")


def judged(run_check: Callable[..., dict[str, Any]], target: str, gathered: Any, config: dict[str, Any],
           options: dict[str, Any], started: float) -> dict[str, Any]:
    """Compare with the expectations, then the ordinary run with the outcome current."""
    from bnconform.api import single_threaded_torch
    from bnconform.distributed import judge, report
    from bnconform.distributed.driver import make_context
    from bnconform.distributed.expect import expectations

    ctx = make_context(target, config["spec"], dict(options.get("init") or {}), config["seed"], "cpu",
                       config["timeout_s"])
    with single_threaded_torch():
        expected = expectations(ctx, gathered.world_size, config["timeout_s"])
    outcome = judge.outcome(gathered, expected, time.perf_counter() - started)
    how = f"--world-size {gathered.world_size}" if gathered.launcher == "spawn" else \
        f"--distributed (under a launcher, {gathered.world_size} ranks)"
    outcome.extra["repro"] = f"bnconform check {target!r} {how}"
    with judge.active(outcome):
        result = run_check(target, **options)
    result["distributed"] = report.section(outcome)
    result["settings"]["world_size"] = gathered.world_size
    result["summary"]["duration_s"] = round(time.perf_counter() - started, 3)
    return result


def joined(run_check: Callable[..., dict[str, Any]], target: str, config: dict[str, Any],
           options: dict[str, Any], started: float) -> dict[str, Any]:
    """Under a launcher: every rank measures; rank 0 judges and reports; the others exit with its code."""
    from bnconform.distributed import group
    from bnconform.distributed.launch import Gathered, deadline_s
    from bnconform.distributed.worker import rank_record

    member = group.Member.from_env(os.environ)
    store = group.connect(member, config["timeout_s"])
    group.publish(store, member.rank, rank_record(member, store, config))
    if member.rank != 0:
        arrived = group.wait(store, ["exit"], EXIT_WAIT_S)
        code = int(store.get("exit")) if arrived else 3
        # read before acknowledging: once every rank has acknowledged, rank 0 may close the store
        leave_bounded(config["timeout_s"])
        group.acknowledge(store, member.rank)
        raise SystemExit(code)
    code = 3
    try:
        keys = [f"record/{r}" for r in range(member.world_size)]
        group.wait(store, keys, deadline_s(member.world_size, config["timeout_s"]))
        launcher = "torchrun" if os.environ.get("TORCHELASTIC_RUN_ID") else "external launcher"
        gathered = Gathered(member.world_size, group.collected(store, member.world_size), launcher=launcher)
        gathered.missing = {r: {"kind": "died", "what": "the rank's process", "scenario": "", "traceback": "",
                                "message": "sent no record before the deadline"}
                            for r in range(member.world_size) if r not in gathered.records}
        leave_bounded(config["timeout_s"])  # single-process checks must not see an initialized group
        result = judged(run_check, target, gathered, config, options, started)
        code = int(result["summary"]["exit_code"])
        return result
    finally:
        store.set("exit", str(code))
        if member.hosts_store:  # the others read the exit code from this process's store
            group.wait(store, [f"ack/{r}" for r in range(1, member.world_size)], ACK_WAIT_S)


def leave_bounded(timeout_s: float) -> None:
    from bnconform.distributed.driver import RankFailure, call
    from bnconform.distributed.group import leave

    try:
        call("leaving the process group", leave, timeout_s)
    except RankFailure:
        pass  # a thread still stuck in a collective: the checks' own timeouts bound what follows
