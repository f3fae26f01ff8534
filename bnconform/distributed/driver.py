"""What one rank does: build the target, train one step on its shard, and measure.

The driver measures only (raw outputs, gradients, running statistics); the judge, in the
parent or on rank 0, compares them with the spec. Every call into user code runs in a
watched thread, so a rank that raises or hangs (a collective its peers never join)
reports the traceback or the stack it is stuck in instead of vanishing.
"""

from __future__ import annotations

import inspect
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch

from bnconform.construct import Builder
from bnconform.context import RunContext, RunSettings, describe_exception, per_channel
from bnconform.discover import discover
from bnconform.distributed.scenarios import BETA, GAMMA, global_batch, scenarios
from bnconform.spec import load_spec
from bnconform.target import load_target

T = TypeVar("T")
GROUP_PARAMETERS = ("process_group", "group", "pg")  # how SyncBatchNorm-like classes take a group


class RankFailure(Exception):
    """User code raised or hung on this rank; carries the traceback (or the stuck stack)."""

    def __init__(self, kind: str, what: str, message: str, trace: str) -> None:
        super().__init__(f"{what}: {message}")
        self.kind, self.what, self.message, self.trace = kind, what, message, trace

    def to_json(self, scenario: str) -> dict[str, str]:
        return {"kind": self.kind, "what": self.what, "message": self.message,
                "traceback": self.trace, "scenario": scenario}


def make_context(target: str, spec: str, init: Mapping[str, object], seed: int, device: str,
                 timeout_s: float) -> RunContext:
    """The same context a single-process run builds, for the rank's own device."""
    builder = Builder(load_target(target), init)
    features = builder.pinned("num_features")
    settings = RunSettings(
        seed=seed, device=device, timeout_s=timeout_s, devices=(device,),
        num_features=features if isinstance(features, int) and features >= 1 else RunSettings.num_features,
    )
    return RunContext(load_spec(spec), builder, settings)


def group_parameter(ctx: RunContext) -> str | None:
    """The constructor parameter that takes a process group, unless --init pinned it."""
    try:
        params = inspect.signature(ctx.builder.target.obj).parameters
    except (TypeError, ValueError):
        return None
    return next((p for p in GROUP_PARAMETERS if p in params and p not in ctx.builder.init), None)


def with_group(ctx: RunContext, group: object) -> tuple[RunContext, str]:
    """A context whose builds pass `group` when the class takes one; and how it syncs."""
    name = group_parameter(ctx)
    if name is None:
        return ctx, "the default process group"
    builder = Builder(ctx.builder.target, {**ctx.builder.init, name: group})
    return RunContext(ctx.spec, builder, ctx.settings), f"{name}= (a group of all ranks)"


def call(what: str, fn: Callable[[], T], timeout_s: float) -> T:
    """Run `fn` in a watched thread; a raise or a hang becomes RankFailure with its stack."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as error:  # noqa: BLE001 - user code may raise anything
            box["error"], box["trace"] = error, traceback.format_exc()

    worker = threading.Thread(target=target, name=f"bnconform-rank:{what}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():  # the thread stays stuck (a collective cannot be cancelled); report where
        frame = sys._current_frames().get(worker.ident or -1)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else ""
        raise RankFailure("hung", what, f"no result within {timeout_s:g} s", stack)
    if "error" in box:
        raise RankFailure("raised", what, describe_exception(box["error"]), box["trace"])
    return box["value"]


def drive(ctx: RunContext, rank: int, world_size: int, timeout_s: float) -> dict[str, Any]:
    """Every scenario on this rank, in the same order as every other rank; stops at a failure."""
    record: dict[str, Any] = {"rank": rank, "status": "ok", "error": None, "steps": []}
    for index, scenario in enumerate(scenarios(world_size)):
        x, grad = global_batch(ctx, scenario, index).shard(scenario, rank)
        label = f"training step ({scenario.name} shards {list(scenario.shards)})"
        try:
            record["steps"].append({"scenario": scenario.name, **measure(ctx, x, grad, label, timeout_s)})
        except RankFailure as failure:
            record.update(status=failure.kind, error=failure.to_json(scenario.name))
            break
    return record


def measure(ctx: RunContext, x_cf: torch.Tensor, grad_cf: torch.Tensor, label: str,
            timeout_s: float) -> dict[str, Any]:
    """One training step on channels-first `x_cf` with upstream gradient `grad_cf`: outputs,
    gradients and state afterwards (flat float64 lists, in the spec's layout)."""
    module = call("constructing the module", lambda: ctx.build(), timeout_s)
    found = discover(module, ctx.channels)
    for role, values in (("weight", GAMMA), ("bias", BETA)):
        if found.has(role):
            found.set(module, role, per_channel(values, ctx.channels))
    x = ctx.to_layout(x_cf).to(ctx.device, ctx.dtype).detach().clone().requires_grad_(True)  # a leaf
    upstream = ctx.to_layout(grad_cf).to(ctx.device, ctx.dtype)

    def step() -> torch.Tensor:
        module.train()
        y = module(x)
        (y * upstream).sum().backward()  # backward collectives are watched like forward's
        return y.detach()

    y = call(label, step, timeout_s * 1.5 + 1)
    return {
        "output": flat(y),
        "input_grad": flat(x.grad),
        **{f"{role}_grad": flat(getattr(found.get(module, role), "grad", None)) for role in ("weight", "bias")},
        **{role: flat(found.get(module, role)) for role in ("running_mean", "running_var")},
        "num_batches_tracked": count(found.get(module, "num_batches_tracked")),
    }


def flat(t: torch.Tensor | None) -> list[float] | None:
    return None if t is None else t.detach().double().cpu().reshape(-1).tolist()


def count(t: torch.Tensor | None) -> int | None:
    return None if t is None or t.numel() != 1 else int(t.item())
