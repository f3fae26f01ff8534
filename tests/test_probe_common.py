"""The probes' shared measuring helpers (bnconform.probes.common), pinned one rule at a time:
every probe's numbers pass through them, so a tolerance or a size rule that drifts here moves
every finding at once (issue 13)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bnconform.context import per_channel
from bnconform.errors import UserCodeError
from bnconform.probes import common
from bnconform.probes.basics import found_tensors
from tests._contexts import context
from tests.fixtures.hostile_state import Refuses  # every torch operation on it raises


def test_relative_error_is_the_largest_difference_over_the_largest_expected_value() -> None:
    observed = torch.tensor([1.0, 2.5, -4.0])
    expected = torch.tensor([1.0, 2.0, -4.0])
    assert common.relative_error(observed, expected) == 0.5 / 4.0


def test_relative_error_of_an_all_zero_expectation_is_measured_against_a_tiny_floor() -> None:
    assert common.relative_error(torch.tensor([1e-13]), torch.zeros(1)) == pytest.approx(0.1)
    assert common.relative_error(torch.zeros(2), torch.zeros(2)) == 0.0


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        (torch.ones(3), torch.ones(1, 3)),
        (torch.tensor([1.0, float("nan")]), torch.ones(2)),
        (torch.tensor([float("-inf"), 1.0]), torch.ones(2)),
    ],
    ids=["shapes-differ", "nan", "inf"],
)
def test_relative_error_is_infinite_for_another_shape_or_a_non_finite_observation(observed, expected) -> None:
    assert common.relative_error(observed, expected) == float("inf")


def test_relative_error_compares_float16_values_in_float64() -> None:
    observed = torch.tensor([2049.0], dtype=torch.float16)  # float16 rounds 2049 to 2048
    assert common.relative_error(observed, torch.tensor([2048.0], dtype=torch.float64)) == 0.0
    assert common.relative_error(torch.tensor([3.0], dtype=torch.float16), torch.tensor([2.0])) == 0.5


def test_classify_names_the_closest_candidate_within_the_tolerance_inclusive() -> None:
    observed = torch.tensor([1.5])
    candidates = {"far": torch.tensor([4.0]), "near": torch.tensor([1.0])}  # errors 0.625 and 0.5
    assert common.classify(observed, candidates, tol=0.5) == "near"
    assert common.classify(observed, candidates, tol=0.4999) == "other"
    assert common.classify(observed, {"only": torch.tensor([4.0])}, tol=0.6) == "other"


def test_prepare_sets_affine_parameters_and_running_statistics_per_channel() -> None:
    ctx = context(nn.BatchNorm1d)
    c = ctx.channels
    prepared = common.prepare(ctx, gamma=[1.5, -0.5], beta=[0.25], running=([1.0, 2.0], [3.0, 4.0]))
    module = prepared.module
    assert torch.equal(module.weight.detach().double(), per_channel([1.5, -0.5], c))
    assert torch.equal(module.bias.detach().double(), per_channel([0.25], c))
    assert torch.equal(module.running_mean.double(), per_channel([1.0, 2.0], c))
    assert torch.equal(module.running_var.double(), per_channel([3.0, 4.0], c))
    assert prepared.discovery is ctx.probe(found_tensors)


def test_prepare_leaves_what_it_is_not_given_as_built() -> None:
    ctx = context(nn.BatchNorm1d)
    module = common.prepare(ctx).module
    assert torch.equal(module.weight.detach(), torch.ones(ctx.channels))
    assert torch.equal(module.bias.detach(), torch.zeros(ctx.channels))
    assert torch.equal(module.running_var, torch.ones(ctx.channels))


def test_prepare_passes_roles_to_the_constructor() -> None:
    ctx = context(nn.BatchNorm1d)
    module = common.prepare(ctx, momentum=0.25).module
    assert module.momentum == 0.25


def test_prepare_sets_no_running_statistic_unless_both_hold_one_value_per_channel(monkeypatch) -> None:
    ctx = context(nn.BatchNorm1d)
    built = ctx.build()
    built.running_var = torch.ones(1)  # one value for all channels: nothing per channel to set
    monkeypatch.setattr(ctx, "build", lambda *args, **roles: built)
    module = common.prepare(ctx, running=([5.0], [7.0])).module
    assert torch.equal(module.running_mean, torch.zeros(ctx.channels))
    assert torch.equal(module.running_var, torch.ones(1))


def test_per_channel_running_needs_both_statistics_with_one_value_per_channel() -> None:
    ctx = context(nn.BatchNorm1d)
    found = ctx.probe(found_tensors)
    module = ctx.build()
    assert common.per_channel_running(found, module, ctx.channels)
    assert not common.per_channel_running(found, module, ctx.channels + 1)
    module.running_mean = None
    assert not common.per_channel_running(found, module, ctx.channels)


def test_readable_gives_plain_tensors_flat_in_float64_on_the_cpu() -> None:
    value = common.readable(torch.arange(6, dtype=torch.float32).reshape(2, 3))
    assert value is not None and value.dtype == torch.float64 and value.shape == (6,)
    assert value.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    parameter = common.readable(nn.Parameter(torch.ones(2)))
    assert parameter is not None and not parameter.requires_grad


@pytest.mark.parametrize(
    "value",
    [None, [1.0, 2.0], torch.ones(2).as_subclass(Refuses), torch.empty(2, device="meta")],
    ids=["none", "list", "subclass", "meta"],
)
def test_readable_refuses_what_has_no_plain_numbers(value) -> None:
    assert common.readable(value) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "no tensor"),
        (torch.ones(3), "(3,)"),
        (nn.Parameter(torch.ones(2, 1)), "(2, 1)"),
        (torch.empty(3, device="meta"), "(3,) on meta"),
        (torch.ones(3).as_subclass(Refuses), "a Refuses (tensor subclass)"),
    ],
    ids=["none", "tensor", "parameter", "meta", "subclass"],
)
def test_held_describes_a_statistic_without_calling_into_it(value, words: str) -> None:
    assert common.held(value) == words


def test_running_state_needs_both_statistics_readable() -> None:
    ctx = context(nn.BatchNorm1d)
    found = ctx.probe(found_tensors)
    module = ctx.build()
    state = common.running_state(found, module)
    assert state is not None
    assert torch.equal(state.mean, torch.zeros(ctx.channels, dtype=torch.float64))
    assert torch.equal(state.var, torch.ones(ctx.channels, dtype=torch.float64))
    module.running_var = torch.ones(ctx.channels, device="meta")
    assert common.running_state(found, module) is None


def test_affine_values_keep_one_value_per_channel_or_one_for_all() -> None:
    ctx = context(nn.BatchNorm1d)
    found = ctx.probe(found_tensors)
    module = ctx.build()
    c = ctx.channels
    weight, bias = common.affine_values(found, module, c)
    assert weight is not None and weight.numel() == c and bias is not None and bias.numel() == c
    module.weight = nn.Parameter(torch.full((1,), 2.0))
    module.bias = nn.Parameter(torch.zeros(c + 1))
    weight, bias = common.affine_values(found, module, c)
    assert weight is not None and weight.tolist() == [2.0]
    assert bias is None


class Records(nn.BatchNorm1d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = (self.training, torch.is_grad_enabled())
        return super().forward(x)


@pytest.mark.parametrize(("train", "grad"), [(True, True), (False, False), (False, True)])
def test_forward_runs_in_the_mode_and_grad_setting_asked_for(train: bool, grad: bool) -> None:
    ctx = context(Records)
    module = ctx.build()
    x = ctx.input_with_stats(ctx.primary_rank, [0.0], [1.0], salt=1)
    y = common.forward(ctx, module, x, train=train, grad=grad)
    assert module.seen == (train, grad)
    assert y.shape == x.shape and not y.requires_grad


@pytest.mark.parametrize(("train", "label"), [(True, "train-mode forward"), (False, "eval-mode stepping")])
def test_forward_names_the_call_and_refuses_what_is_not_a_tensor(train: bool, label: str) -> None:
    ctx = context(nn.BatchNorm1d)
    module = ctx.build()
    module.forward = lambda x: (x, None)
    x = ctx.input_with_stats(ctx.primary_rank, [0.0], [1.0], salt=1)
    what = label.split("-mode ", 1)[1]
    with pytest.raises(UserCodeError) as raised:
        common.forward(ctx, module, x, train=train, what=what)
    assert raised.value.what == label
    assert "returned tuple, not a tensor" in raised.value.detail
