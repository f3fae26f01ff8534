"""One rank: join the group, drive the scenarios, publish the record.

`python -m bnconform.distributed.worker` is what the spawner starts (configuration in
BNCONFORM_RANK_CONFIG); under torchrun the same `rank_record` runs inside `bnconform
check --distributed` on every rank.
"""

from __future__ import annotations

import ast
import faulthandler
import json
import os
import signal
import sys
import traceback
from typing import Any

import torch
import torch.distributed as dist

from bnconform.context import describe_exception
from bnconform.distributed.driver import drive, group_parameter, make_context, with_group
from bnconform.distributed.group import Member, backend_and_device, connect, join, publish, wait


def rank_record(member: Member, store: dist.Store, config: dict[str, Any]) -> dict[str, Any]:
    """This rank's measurements, or the reason it has none (with the traceback)."""
    torch.set_num_threads(1)  # N ranks share the machine's cores
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", member.world_size))
    backend, device = backend_and_device(config["device"], member.local_rank, local_world)
    info = {"rank": member.rank, "backend": backend, "device": device, "via": ""}
    try:
        ctx = make_context(config["target"], config["spec"], ast.literal_eval(config["init"]),
                           config["seed"], device, config["timeout_s"])
        join(member, store, backend, config["timeout_s"])
        ctx, info["via"] = synchronised(ctx, member.world_size)
        record = drive(ctx, member.rank, member.world_size, config["timeout_s"])
    except Exception as error:  # noqa: BLE001 - startup of a rank: a finding, not a crash
        record = {"rank": member.rank, "status": "raised", "steps": [], "error": {
            "kind": "raised", "what": "starting the rank", "message": describe_exception(error),
            "traceback": traceback.format_exc(), "scenario": ""}}
    return {**record, **info}


def synchronised(ctx: Any, world_size: int) -> tuple[Any, str]:
    """Pass a group of all ranks when the class takes one (process_group=, group=)."""
    if group_parameter(ctx) is None:
        return ctx, "the default process group"
    return with_group(ctx, dist.new_group(list(range(world_size))))


def main() -> None:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the spawner asks for stacks before a kill
    member = Member.from_env(os.environ)
    config = json.loads(os.environ["BNCONFORM_RANK_CONFIG"])
    store = connect(member, config["timeout_s"])
    publish(store, member.rank, rank_record(member, store, config))
    wait(store, ["exit"], config["exit_wait_s"])  # peers may still need this rank in a collective
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # a thread stuck in a collective must not keep the process alive


if __name__ == "__main__":
    main()
