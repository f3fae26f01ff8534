"""The dtype probe's comparison with torch.nn.BatchNorm (bnconform.probes.dtypes), judged from
given observations: what each comparison looks at (issue 13)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from bnconform.context import per_channel
from bnconform.probes import dtypes
from bnconform.reference import RunningState
from tests._contexts import context

CASE = dtypes.Case("cpu", torch.float32, torch.float32)


@pytest.fixture
def ctx():
    return context(nn.BatchNorm2d)


def torch_observed(ctx) -> tuple[torch.Tensor, dtypes.Seen]:
    x = dtypes.case_input(ctx, CASE).cpu()
    c = x.shape[1]
    state = RunningState(per_channel(dtypes.FAR_MEANS, c).double(), per_channel(dtypes.FAR_VARS, c).double())
    seen = dtypes.torch_seen(x, state, per_channel(dtypes.GAMMA, c).double(), per_channel(dtypes.BETA, c).double(),
                             torch.float32)
    return x, seen


def judged(ctx, x: torch.Tensor, seen: dtypes.Seen) -> list[str]:
    outcome = dtypes.Outcome(CASE)
    dtypes.judge(ctx, CASE, x, seen, dtypes.TORCH, outcome, x.numel() // x.shape[1])
    return outcome.errors


def test_torch_s_own_observation_has_no_error(ctx) -> None:
    assert judged(ctx, *torch_observed(ctx)) == []


def test_running_statistics_after_the_step_are_compared(ctx) -> None:
    x, seen = torch_observed(ctx)
    shifted = dataclasses.replace(seen, after=RunningState(seen.after.mean + 1.0, seen.after.var))
    errors = judged(ctx, x, shifted)
    assert [e for e in errors if e.startswith(f"{CASE.label}: running_mean error")], errors
    assert not [e for e in errors if "running_var" in e], errors


def test_the_eval_output_is_compared(ctx) -> None:
    x, seen = torch_observed(ctx)
    (error,) = judged(ctx, x, dataclasses.replace(seen, eval=seen.eval + 1.0))
    assert error.startswith(f"{CASE.label}: eval output error")


def test_a_case_names_both_dtypes_whenever_they_differ() -> None:
    assert dtypes.Case("cpu", torch.float16, torch.float32).label == "cpu float16 module, float32 input"
    assert dtypes.Case("cpu", torch.float32, torch.float16).label == "cpu float32 module, float16 input"
    assert dtypes.Case("cpu", torch.float16, torch.float16).label == "cpu float16 module"
    assert dtypes.Case("cpu", torch.float16, torch.float32).pair == "float16 module, float32 input"
    assert dtypes.Case("cpu", torch.float16, torch.float16).pair == "float16"
