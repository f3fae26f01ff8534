"""What each rank should have measured: the spec's float64 reference on the full batch.

Also the class's own single-process behaviour, on the full batch and on each shard
alone. The first isolates the distributed part: where the class already differs from
the spec in one process (the ordinary checks report that), the ranks are held to what
the class does in one process instead, so one bug is never reported twice. The second
is the "not synchronized" hypothesis: each rank normalizing with its shard's statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bnconform.context import RunContext, per_channel
from bnconform.discover import discover
from bnconform.distributed.driver import RankFailure, call, flat, measure
from bnconform.distributed.scenarios import BETA, GAMMA, Scenario, global_batch, scenarios
from bnconform.probes.common import relative_error
from bnconform.reference import RunningState, train_forward

TOL = 1e-6  # float64 throughout: anything above this is a real difference


@dataclass(frozen=True)
class Expected:
    """One scenario's expectations; tensors are flat float64, per-shard ones indexed by rank."""

    scenario: Scenario
    output: list[torch.Tensor]  # per rank: its slice of the full-batch output
    input_grad: list[torch.Tensor]
    weight_grad: torch.Tensor | None  # full batch: what the ranks' local gradients sum to
    bias_grad: torch.Tensor | None
    running_mean: torch.Tensor | None
    running_var: torch.Tensor | None
    num_batches_tracked: int | None
    own_shard_output: list[torch.Tensor | None]  # the class run on each shard alone
    local_count_var: list[torch.Tensor | None]  # running var with the local-count correction
    baseline: dict[str, str]  # quantity -> "spec" | "class (single process)"


def expectations(ctx: RunContext, world_size: int, timeout_s: float) -> list[Expected]:
    return [expect(ctx, s, i, world_size, timeout_s) for i, s in enumerate(scenarios(world_size))]


def expect(ctx: RunContext, scenario: Scenario, index: int, world_size: int, timeout_s: float) -> Expected:
    spec = reference(ctx, scenario, index)
    batch = global_batch(ctx, scenario, index)
    chosen, baseline = choose(spec, own_run(ctx, batch.x, batch.grad, timeout_s))
    cuts = [scenario.bounds(r) for r in range(world_size)]
    shard_runs = [own_run(ctx, *batch.shard(scenario, r), timeout_s) for r in range(world_size)]
    return Expected(
        scenario=scenario,
        output=[slice_rows(chosen["output"], spec["rows"], a, b) for a, b in cuts],
        input_grad=[slice_rows(chosen["input_grad"], spec["rows"], a, b) for a, b in cuts],
        weight_grad=chosen["weight_grad"], bias_grad=chosen["bias_grad"],
        running_mean=chosen["running_mean"], running_var=chosen["running_var"],
        num_batches_tracked=spec["nbt"],
        own_shard_output=[None if r is None else r["output"] for r in shard_runs],
        local_count_var=[local_count_var(ctx, scenario, index, r) for r in range(world_size)],
        baseline={k: v for k, v in baseline.items() if k not in ("rows", "nbt")},
    )


def choose(spec: dict, own: dict | None) -> tuple[dict, dict[str, str]]:
    """Per quantity: the spec's value, or the class's own single-process value where that
    already differs from the spec (an ordinary finding, not a distributed one)."""
    chosen, baseline = {}, {}
    for key, value in spec.items():
        mine = None if own is None else own.get(key)
        differs = mine is not None and value is not None and relative_error(mine, value) > TOL
        chosen[key] = mine if differs else value
        baseline[key] = "class (single process)" if differs else "spec"
    return chosen, baseline


def slice_rows(values: torch.Tensor, rows: int, start: int, stop: int) -> torch.Tensor:
    """Samples start..stop of a flattened batch of `rows` samples (batch axis first)."""
    per = values.numel() // rows
    return values[start * per: stop * per]


def initial(ctx: RunContext) -> tuple[RunningState | None, int | None, bool, bool]:
    """A fresh module's running state, step counter, and whether it has weight and bias."""
    module = call("constructing the module", lambda: ctx.build(), ctx.settings.timeout_s)
    found = discover(module, ctx.channels)
    mean, var = (flat_tensor(found.get(module, r)) for r in ("running_mean", "running_var"))
    nbt = found.get(module, "num_batches_tracked")
    state = RunningState(mean, var) if mean is not None and var is not None else None
    steps = int(nbt.item()) if nbt is not None and nbt.numel() == 1 else None
    return state, steps, found.has("weight"), found.has("bias")


def reference(ctx: RunContext, scenario: Scenario, index: int) -> dict[str, torch.Tensor | int | None]:
    state, steps, has_w, has_b = initial(ctx)
    batch = global_batch(ctx, scenario, index)
    x = ctx.to_layout(batch.x).requires_grad_(True)
    w = per_channel(GAMMA, ctx.channels).requires_grad_(True) if has_w else None
    b = per_channel(BETA, ctx.channels).requires_grad_(True) if has_b else None
    if state is not None and steps is not None:
        state.steps = steps
    y, new = train_forward(ctx.behaviour(), x, state, w, b)
    (y * ctx.to_layout(batch.grad)).sum().backward()
    return {
        "output": y.detach().reshape(-1), "input_grad": x.grad.reshape(-1),
        "weight_grad": None if w is None else w.grad, "bias_grad": None if b is None else b.grad,
        "running_mean": None if new is None else new.mean, "running_var": None if new is None else new.var,
        "rows": sum(scenario.shards), "nbt": None if steps is None else steps + 1,
    }


def own_run(ctx: RunContext, x: torch.Tensor, grad: torch.Tensor, timeout_s: float) -> dict | None:
    """The class itself, in this process (no process group), on the samples `x`."""
    try:
        measured = measure(ctx, x, grad, "training step (one process)", timeout_s)
    except RankFailure:
        return None  # e.g. one value per channel in one process: no hypothesis to offer
    return {k: (None if v is None else torch.tensor(v, dtype=torch.float64))
            for k, v in measured.items() if k != "num_batches_tracked"}


def local_count_var(ctx: RunContext, scenario: Scenario, index: int, rank: int) -> torch.Tensor | None:
    """The running variance if the global biased variance were corrected with rank's own count."""
    behaviour = ctx.behaviour()
    if behaviour.running_var_estimator != "unbiased":
        return None
    state, steps, _, _ = initial(ctx)
    if state is None:
        return None
    x = ctx.to_layout(global_batch(ctx, scenario, index).x)
    axes = behaviour.reduction_axes[x.dim()]
    var = x.var(dim=axes, correction=0).reshape(-1)
    local = x.numel() // ctx.channels * scenario.shards[rank] // sum(scenario.shards)
    if local < 2:
        return None
    weight = behaviour.new_weight if behaviour.new_weight is not None else 1.0 / ((steps or 0) + 1)
    return (1 - weight) * state.var + weight * var * local / (local - 1)


def flat_tensor(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else torch.tensor(flat(t), dtype=torch.float64)
