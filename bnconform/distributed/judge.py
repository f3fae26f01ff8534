"""Compares what every rank measured with the expectations; the per-rank table.

`Outcome` is built once per distributed run (in the spawner, or on rank 0 under torchrun)
and made current while the registered checks run: the sync checks read it through
`current()`, and find none in a single-process run (then they are skipped).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from bnconform.distributed.expect import TOL, Expected
from bnconform.distributed.launch import Gathered
from bnconform.probes.common import relative_error

_CURRENT: contextvars.ContextVar[Outcome | None] = contextvars.ContextVar("bnconform_distributed", default=None)


def current() -> Outcome | None:
    return _CURRENT.get()


@contextlib.contextmanager
def active(outcome: Outcome) -> Iterator[None]:
    token = _CURRENT.set(outcome)
    try:
        yield
    finally:
        _CURRENT.reset(token)


@dataclass(frozen=True)
class Step:
    """One rank in one scenario: relative errors against the expectation (inf = missing)."""

    rank: int
    scenario: str
    samples: int
    output: float
    output_own_shard: float | None  # vs the class run on this shard alone (None: no such run)
    input_grad: float
    running_mean: float | None  # None: neither the class nor the spec tracks running statistics
    running_var: float | None
    running_var_local_count: float | None
    num_batches_tracked: tuple[int | None, int | None]  # (observed, expected)
    observed: dict[str, Any]


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    shards: tuple[int, ...]
    steps: list[Step]
    weight_grad: float | None  # the ranks' local gradients summed, vs the full batch's
    bias_grad: float | None
    divergence: float  # largest difference of any rank's running statistics from rank 0's
    counters: list[int | None]  # num_batches_tracked per rank


@dataclass
class Outcome:
    gathered: Gathered
    scenarios: list[ScenarioResult]
    baseline: dict[str, str]
    duration_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def world_size(self) -> int:
        return self.gathered.world_size

    def failures(self) -> dict[int, dict[str, str]]:
        """Ranks that raised, hung or died, with their error (traceback included)."""
        failed = {r: rec["error"] for r, rec in self.gathered.records.items() if rec.get("status") != "ok"}
        return dict(sorted({**failed, **self.gathered.missing}.items()))

    def record(self, rank: int) -> dict[str, Any]:
        return self.gathered.records.get(rank, {})


def outcome(gathered: Gathered, expected: list[Expected], duration_s: float) -> Outcome:
    results = []
    for exp in expected:
        measured = {r: step_of(rec, exp.scenario.name) for r, rec in gathered.records.items()}
        if all(m is not None for m in measured.values()) and len(measured) == gathered.world_size:
            results.append(compare(exp, measured))  # type: ignore[arg-type]
    baseline = {k: v for e in expected for k, v in e.baseline.items() if v != "spec"}
    return Outcome(gathered, results, baseline, duration_s)


def step_of(record: dict[str, Any], scenario: str) -> dict[str, Any] | None:
    return next((s for s in record.get("steps", []) if s.get("scenario") == scenario), None)


def compare(exp: Expected, measured: dict[int, dict[str, Any]]) -> ScenarioResult:
    steps = [step(exp, r, measured[r]) for r in sorted(measured)]
    return ScenarioResult(
        name=exp.scenario.name, shards=exp.scenario.shards, steps=steps,
        weight_grad=summed_error(measured, "weight_grad", exp.weight_grad),
        bias_grad=summed_error(measured, "bias_grad", exp.bias_grad),
        divergence=divergence(measured), counters=[measured[r]["num_batches_tracked"] for r in sorted(measured)],
    )


def step(exp: Expected, rank: int, m: dict[str, Any]) -> Step:
    own = exp.own_shard_output[rank]
    return Step(
        rank=rank, scenario=exp.scenario.name, samples=exp.scenario.shards[rank],
        output=error(m["output"], exp.output[rank]),
        output_own_shard=None if own is None else error(m["output"], own),
        input_grad=error(m["input_grad"], exp.input_grad[rank]),
        running_mean=optional_error(m["running_mean"], exp.running_mean),
        running_var=optional_error(m["running_var"], exp.running_var),
        running_var_local_count=optional_error(m["running_var"], exp.local_count_var[rank])
        if exp.local_count_var[rank] is not None else None,
        num_batches_tracked=(m["num_batches_tracked"], exp.num_batches_tracked),
        observed={k: m[k] for k in ("running_mean", "running_var", "num_batches_tracked")},
    )


def error(observed: list[float] | None, expected: torch.Tensor) -> float:
    if observed is None:
        return float("inf")
    return relative_error(torch.tensor(observed, dtype=torch.float64), expected)


def optional_error(observed: list[float] | None, expected: torch.Tensor | None) -> float | None:
    if observed is None and expected is None:
        return None
    return float("inf") if expected is None else error(observed, expected)


def summed_error(measured: dict[int, dict[str, Any]], key: str, expected: torch.Tensor | None) -> float | None:
    grads = [measured[r][key] for r in measured]
    if expected is None:
        return None
    if any(g is None for g in grads):
        return float("inf")
    return relative_error(torch.tensor(grads, dtype=torch.float64).sum(0), expected)


def divergence(measured: dict[int, dict[str, Any]]) -> float:
    """Largest relative difference of a rank's running statistics from rank 0's."""
    worst = 0.0
    for key in ("running_mean", "running_var"):
        first = measured[min(measured)][key]
        for m in measured.values():
            if (m[key] is None) != (first is None):
                return float("inf")
            if first is not None:
                worst = max(worst, error(m[key], torch.tensor(first, dtype=torch.float64)))
    return worst


def off(value: float | None) -> bool:
    """A difference beyond float64 noise (None: not applicable)."""
    return value is not None and not value <= TOL
