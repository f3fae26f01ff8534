"""The global batches the ranks share, and how they are cut into shards.

Every rank and the judge rebuild the same tensors from the seed, so no data travels
between processes: ranks send back only what they measured. Shards are given different
offsets, so per-rank statistics differ from the global ones (a rank that normalizes
with its own statistics shows), and uneven shards make a count-weighted average differ
from an equally weighted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bnconform.context import RunContext, per_channel

MEANS = [3.0, -2.0, 5.0]  # far from 0 and from each other: the statistics are identifiable
STDS = [2.0, 0.5, 1.0]
SHARD_SHIFT = 1.5  # rank r's samples are shifted by r * SHARD_SHIFT: local stats != global
GAMMA = [1.5, -0.5, 2.0]  # non-trivial affine parameters: their gradients are not the outputs'
BETA = [0.3, -1.2, 0.7]


@dataclass(frozen=True)
class Scenario:
    """One training step of every rank on its shard of one global batch."""

    name: str
    shards: tuple[int, ...]  # samples per rank; their sum is the global batch

    def bounds(self, rank: int) -> tuple[int, int]:
        start = sum(self.shards[:rank])
        return start, start + self.shards[rank]


def scenarios(world_size: int) -> tuple[Scenario, ...]:
    """Even shards, uneven shards, and uneven shards where rank 0 holds a single sample.

    A single-sample shard is allowed by the spec: the check "more than one value per
    channel" is about the global batch, which always has several samples here.
    """
    uneven = tuple(2 + (3 * r) % 5 for r in range(world_size))  # 2, 5, 3, 6... never all equal
    single = (1, *(2 + r for r in range(1, world_size)))
    return (Scenario("even", (3,) * world_size), Scenario("uneven", uneven), Scenario("single", single))


@dataclass(frozen=True)
class Batch:
    """A scenario's global input and upstream gradient, channels-first, float64, on the CPU."""

    x: torch.Tensor
    grad: torch.Tensor

    def shard(self, scenario: Scenario, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
        start, stop = scenario.bounds(rank)
        return self.x[start:stop], self.grad[start:stop]


def global_batch(ctx: RunContext, scenario: Scenario, index: int) -> Batch:
    """The global batch of `scenario`: per-channel means/stds, shard offsets, a random grad."""
    total = sum(scenario.shards)
    gen = ctx.generator(7919 + index)
    shape = (total, ctx.channels, *ctx.shape(ctx.primary_rank)[2:])  # ctx.shape fixes N for 2-D
    z = torch.randn(shape, generator=gen, dtype=torch.float64)
    view = [1] * len(shape)
    view[1] = ctx.channels
    x = per_channel(MEANS, ctx.channels).reshape(view) + per_channel(STDS, ctx.channels).reshape(view) * z
    offsets = torch.cat([torch.full((n,), r * SHARD_SHIFT, dtype=torch.float64)
                         for r, n in enumerate(scenario.shards)])
    x = x + offsets.reshape(-1, *[1] * (len(shape) - 1))
    grad = torch.randn(shape, generator=gen, dtype=torch.float64)
    return Batch(x, grad)
