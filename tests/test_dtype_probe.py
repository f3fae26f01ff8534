"""The dtype probe's comparison with torch.nn.BatchNorm (bnconform.probes.dtypes), judged from
given observations: what each comparison looks at (issue 13)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
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


@pytest.mark.parametrize("ratio", [1.0, 1.0000001])
def test_an_error_equal_to_its_allowance_passes(ctx, monkeypatch, ratio: float) -> None:
    def at_ratio(ctx, name, observed, expected, dtype, n, parity) -> None:
        parity.ratios[name], parity.errors[name], parity.allowed[name] = ratio, 0.5 * ratio, 0.5

    monkeypatch.setattr(dtypes, "compare", at_ratio)
    x, seen = torch_observed(ctx)
    for judge in (lambda outcome: dtypes.judge(ctx, CASE, x, seen, dtypes.TORCH, outcome, 8),
                  lambda outcome: dtypes.judge_seen(ctx, CASE, seen, seen, outcome, 8)):
        outcome = dtypes.Outcome(CASE)
        judge(outcome)
        assert bool(outcome.errors) is (ratio > 1), outcome.errors


class Tagged(torch.Tensor):
    """A tensor subclass: the probes never read one (its methods are user code)."""


class UnreadableWeight(nn.BatchNorm2d):
    def __init__(self, num_features: int, **kwargs: object) -> None:
        super().__init__(num_features, **kwargs)  # type: ignore[arg-type]
        del self.weight
        self.register_buffer("weight", torch.ones(num_features).as_subclass(Tagged))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.as_subclass(torch.Tensor).to(x.dtype)
        return F.batch_norm(x, self.running_mean, self.running_var, weight, self.bias, self.training,
                            self.momentum, self.eps)


def test_a_weight_the_probes_cannot_read_is_left_as_the_class_holds_it() -> None:
    outcome = dtypes.run_case(context(UnreadableWeight), dtypes.Case("cpu", torch.float64, torch.float64))
    assert outcome.errors == [] and outcome.dtypes == []


def with_buffer_dtypes(seen: dtypes.Seen, **buffer_dtypes: torch.dtype) -> dtypes.Seen:
    return dataclasses.replace(seen, buffer_dtypes=buffer_dtypes)


def test_a_running_statistic_kept_in_another_dtype_is_named(ctx) -> None:
    x, seen = torch_observed(ctx)
    seen = with_buffer_dtypes(seen, running_mean=torch.float64, running_var=torch.float32)
    for judge in (lambda outcome: dtypes.judge(ctx, CASE, x, seen, dtypes.TORCH, outcome, 8),
                  lambda outcome: dtypes.judge_seen(ctx, CASE, seen, seen, outcome, 8)):
        outcome = dtypes.Outcome(CASE)
        judge(outcome)
        assert outcome.dtypes == [f"{CASE.label}: running_mean is torch.float64, expected torch.float32"]


def test_statistics_unreadable_after_the_step_are_not_compared(ctx) -> None:
    x, seen = torch_observed(ctx)
    unreadable = dataclasses.replace(seen, after=None, eval=None)
    assert judged(ctx, x, unreadable) == []
    for own, case_seen in ((unreadable, seen), (seen, unreadable)):
        outcome = dtypes.Outcome(CASE)
        dtypes.judge_seen(ctx, CASE, case_seen, own, outcome, 8)
        assert set(outcome.parity.ratios) == {"train output"}, outcome.parity.ratios


@pytest.mark.parametrize("sizes", [(6, 3), (3, 2), (2, 2)])
def test_statistics_of_another_size_after_the_step_are_not_the_same_sizes(sizes: tuple[int, int]) -> None:
    before = RunningState(torch.zeros(3), torch.ones(3))
    after = RunningState(torch.zeros(sizes[0]), torch.ones(sizes[1]))
    assert dtypes.same_sizes(before, after) is False
    assert dtypes.same_sizes(before, RunningState(torch.ones(3), torch.zeros(3))) is True
    assert dtypes.same_sizes(before, None) is False


def test_no_eval_is_run_in_the_probes_dtype_when_the_case_resized_its_statistics(ctx) -> None:
    case = dtypes.Case("cpu", torch.float32, torch.float32)
    x = dtypes.case_input(ctx, case)
    seen = dtypes.collect(ctx, case, x)
    resized = dataclasses.replace(seen, after=RunningState(torch.zeros(2), torch.ones(2)))
    own = dtypes.own_precise(ctx, case, x, resized)
    assert own.after is not None and own.eval is None


def test_torch_does_not_handle_a_dtype_its_build_does_not_implement(ctx, monkeypatch) -> None:
    def not_implemented(*args: object) -> dtypes.Seen:
        raise RuntimeError('"batch_norm" not implemented for \'Half\'')

    case = dtypes.sweep_cases("cpu")[0]
    assert dtypes.torch_handles(ctx, case) is True
    monkeypatch.setattr(dtypes, "torch_seen", not_implemented)
    assert dtypes.torch_handles(ctx, case) is False


@pytest.mark.parametrize("what, native, recorded, train", [
    ("train-mode forward (cpu float16 module)", False, True, True),
    ("eval-mode forward (cpu float16 module)", False, True, False),
    ("train-mode forward (cpu float16 module)", True, False, True),
    ("state_dict() (cpu float16 module)", True, True, None),
], ids=["train-forward", "eval-forward", "raises-natively", "not-a-forward"])
def test_a_case_that_raises_is_a_dtype_error_unless_the_forward_raises_natively_too(
        ctx, monkeypatch, what: str, native: bool, recorded: bool, train: bool | None) -> None:
    from bnconform.errors import UserCodeError
    from bnconform.probes import devices

    asked: list[bool] = []
    isolated_calls: list[str] = []
    isolated = dtypes.isolated

    def raising(*args: object) -> None:
        raise UserCodeError(what, "boom")

    def named(ctx: object, label: str, fn: object) -> object:
        isolated_calls.append(label)  # the name a hang or crash of the native forward is reported under
        return isolated(ctx, label, fn)

    def natively(ctx: object, train: bool) -> bool:
        asked.append(train)
        return native

    monkeypatch.setattr(dtypes, "measure", raising)
    monkeypatch.setattr(devices, "raises_natively", natively)
    monkeypatch.setattr(dtypes, "isolated", named)
    case = dtypes.Case("cpu", torch.float16, torch.float16)
    if recorded:
        outcome = dtypes.run_case(ctx, case)
        assert outcome.errors == [f"{case.label}: {what} raised: boom"] and outcome.raised
    else:
        with pytest.raises(UserCodeError):
            dtypes.run_case(ctx, case)
    assert asked == ([] if train is None else [train])
    assert isolated_calls == ([] if train is None else [f"{what.split()[0]} forward"])


def test_activations_up_to_std_100_are_ordinary_and_the_sweep_ascends() -> None:
    """The policy the dtype-support severity rests on (probes/dtypes.py, SWEEP)."""
    assert [(s.label, s.ordinary) for s in dtypes.SWEEP] == [
        ("std 10", True), ("std 100", True), ("std 300", False), ("std 1000", False), ("mean 1000", False)]
