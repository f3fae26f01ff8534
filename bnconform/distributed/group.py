"""Joining the process group, and the key-value store the ranks report through.

Records travel through the rendezvous TCPStore, not through collectives: a rank that hung
or crashed cannot block the others' reports, and every wait on the store is bounded.
The store outlives the process group, so rank 0 can run the single-process checks after
leaving the group and still tell the other ranks the exit code.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from bnconform.errors import UsageError

PREFIX = "bnconform/"
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
STARTUP_S = 180.0  # importing torch in N processes at once on a busy machine is slow


@dataclass(frozen=True)
class Member:
    """This process's place in the group, as a launcher (torchrun, SLURM, our spawner) set it."""

    rank: int
    world_size: int
    local_rank: int
    addr: str
    port: int
    hosts_store: bool  # rank 0 of a launcher that does not host the store itself

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Member:
        missing = [v for v in LAUNCH_VARIABLES if not env.get(v)]
        if missing:
            raise UsageError(f"--distributed needs a launcher such as torchrun; {', '.join(missing)} not set "
                             "(use --world-size N to let bnconform start the processes)")
        try:
            rank, world, port = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["MASTER_PORT"])
            local = int(env.get("LOCAL_RANK", rank))
        except ValueError as error:
            raise UsageError(f"--distributed: a launcher variable is not a number ({error})") from None
        if world < 2 or not 0 <= rank < world:
            raise UsageError(f"--distributed: RANK={rank} WORLD_SIZE={world} (need WORLD_SIZE >= 2)")
        agent = env.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"  # torchrun hosts the store
        return cls(rank, world, local, env["MASTER_ADDR"], port, rank == 0 and not agent)


def gpus_for_all(local_world: int) -> bool:
    """Whether every rank on this machine gets a GPU of its own (nccl needs one per rank)."""
    return torch.cuda.is_available() and local_world <= torch.cuda.device_count()


def backend_and_device(device: str, local_rank: int, local_world: int) -> tuple[str, str]:
    """nccl on this rank's GPU when the run is on CUDA and every rank has one, else gloo on the CPU."""
    if device in ("cuda", "auto") and gpus_for_all(local_world):
        torch.cuda.set_device(local_rank)
        return "nccl", f"cuda:{local_rank}"
    return "gloo", "cpu"


def connect(member: Member, timeout_s: float) -> dist.Store:
    store = dist.TCPStore(member.addr, member.port, is_master=member.hosts_store,
                          wait_for_workers=False, timeout=dt.timedelta(seconds=STARTUP_S))
    return dist.PrefixStore(PREFIX, store)


def join(member: Member, store: dist.Store, backend: str, timeout_s: float) -> None:
    """Wait until every rank is up, then init the group with the short collective timeout."""
    store.set(f"ready/{member.rank}", "1")
    wait(store, [f"ready/{r}" for r in range(member.world_size)], STARTUP_S)
    dist.init_process_group(backend, store=dist.PrefixStore("group", store), rank=member.rank,
                            world_size=member.world_size, timeout=dt.timedelta(seconds=timeout_s))


def wait(store: dist.Store, keys: list[str], timeout_s: float) -> bool:
    """Poll (store.wait logs a warning per timeout); True when every key is present."""
    deadline = time.monotonic() + timeout_s
    while not store.check(keys):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def publish(store: dist.Store, rank: int, record: Mapping[str, Any]) -> None:
    store.set(f"record/{rank}", json.dumps(record))


def acknowledge(store: dist.Store, rank: int) -> None:
    """Tell rank 0 this rank has its exit code; rank 0 closing the store after its own wait is no error."""
    try:
        store.set(f"ack/{rank}", "1")
    except (RuntimeError, OSError):  # DistStoreError and connection resets derive from these
        pass


def collected(store: dist.Store, world_size: int) -> dict[int, dict[str, Any]]:
    """The records published so far, by rank."""
    return {r: json.loads(store.get(f"record/{r}")) for r in range(world_size) if store.check([f"record/{r}"])}


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def environment_of(member: Member) -> dict[str, str]:
    """The launcher variables a spawned rank gets (the spawner hosts the store)."""
    return {"RANK": str(member.rank), "WORLD_SIZE": str(member.world_size), "LOCAL_RANK": str(member.local_rank),
            "LOCAL_WORLD_SIZE": str(member.world_size),
            "MASTER_ADDR": member.addr, "MASTER_PORT": str(member.port), "TORCHELASTIC_USE_AGENT_STORE": "True",
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
