"""Probe behaviour that no corpus class reached, each found by a mutant that survived (issue 13).

Each test names what the probe must do and drives it with the smallest class that shows it.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from bnconform.errors import UserCodeError
from bnconform.probes import basics, explained, statistics
from bnconform.probes import layouts as layout_probes
from bnconform.probes import modes as mode_probes
from bnconform.spec import load_spec
from tests._contexts import context, measured, probe_failed
from tests._strings import fresh


class BatchNormEps1e2(nn.BatchNorm1d):
    def __init__(self, num_features: int, **kwargs: object) -> None:
        super().__init__(num_features, eps=1e-2, **kwargs)  # type: ignore[arg-type]


def test_a_class_normalizing_with_other_statistics_than_the_spec_explains_no_eps_or_estimator() -> None:
    """Under the frozen spec a batch-normalizing class's outputs differ for that reason first;
    its eps (1e-2 here) must not be put into the explained behaviour as if it were the cause."""
    ctx = context(BatchNormEps1e2, "frozen")
    behaviour, codes = explained.explained_behaviour(ctx)
    assert ctx.spec.train_uses == "running"
    assert codes == ()
    assert behaviour == ctx.behaviour()


def test_a_torch_class_under_a_spec_placing_eps_outside_the_root_is_explained_with_its_own_placement() -> None:
    spec = dataclasses.replace(load_spec("pytorch"), eps_placement="outside-sqrt")
    ctx = context(nn.BatchNorm1d, spec)
    behaviour, codes = explained.explained_behaviour(ctx)
    assert codes == ("eps-placement",)
    assert behaviour.eps_placement == "inside-sqrt"


def test_axes_equal_to_the_spec_s_explain_nothing_whatever_tuple_holds_them() -> None:
    """Structures rebuilt from their parts (as decoded from a worker's JSON) hold equal but
    distinct axes tuples: torch's BatchNorm2d still needs no explanation."""
    ctx = context(nn.BatchNorm2d)
    for rank in ctx.probe(basics.rank_support).accepted:
        value = ctx.probe(statistics.structure, rank)
        measured(ctx, statistics.structure, rank, value=dataclasses.replace(value, axes=tuple(list(value.axes))))
    assert explained.explained_behaviour(ctx) == (ctx.behaviour(), ())


def test_a_probe_that_cannot_run_explains_nothing() -> None:
    ctx = context(nn.BatchNorm1d)
    probe_failed(ctx, statistics.structure, ctx.primary_rank, error=UserCodeError("a forward", "boom"))
    assert explained.explained_behaviour(ctx) == (ctx.behaviour(), ())


class SubtractedEps(nn.BatchNorm1d):
    """eps on the wrong side: (x - mean) / sqrt(var - 1e-7), measured as a negative eps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        mean, var = x.mean(dim=0), x.var(dim=0, unbiased=False)
        with torch.no_grad():
            self.running_mean.lerp_(mean, 0.1)
            self.running_var.lerp_(x.var(dim=0), 0.1)
        return (x - mean) / torch.sqrt(var - 1e-7) * self.weight + self.bias


def test_a_negative_measured_eps_is_explained_as_zero() -> None:
    ctx = context(SubtractedEps)
    assert ctx.probe(statistics.eps_behaviour, "biased").default_value < 0
    behaviour, codes = explained.explained_behaviour(ctx)
    assert "eps-default" in codes
    assert behaviour.eps == 0.0


class SlowBatchNorm(nn.BatchNorm1d):
    def __init__(self, num_features: int, **kwargs: object) -> None:
        super().__init__(num_features, momentum=0.01, **kwargs)  # type: ignore[arg-type]


def test_a_running_average_with_momentum_0_01_is_seen_to_update() -> None:
    """It moves the far running statistics by less than 1 (0.09 for a mean 9 away): an update
    is any change beyond rounding, not a change of some size."""
    observed = mode_probes.modes(context(SlowBatchNorm))
    assert observed.train_grad.updates is True
    assert observed.eval_no_grad.updates is False


class GrowingStatsBatchNorm(nn.BatchNorm1d):
    """Appends each batch's mean to running_mean instead of averaging it in."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.running_mean = torch.cat([self.running_mean, x.detach().mean(dim=0)])
        mean = x.mean(dim=0) if self.training else self.running_mean[: self.num_features]
        var = x.var(dim=0, unbiased=False) if self.training else self.running_var
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


def test_running_statistics_that_grow_are_seen_to_update() -> None:
    observed = mode_probes.modes(context(GrowingStatsBatchNorm))
    assert observed.train_grad.updates is True
    assert observed.eval_grad.updates is False


def test_a_torch_class_under_a_spec_normalizing_with_the_unbiased_variance_is_explained_as_biased() -> None:
    spec = dataclasses.replace(load_spec("pytorch"), norm_variance="unbiased")
    ctx = context(nn.BatchNorm1d, spec)
    behaviour, codes = explained.explained_behaviour(ctx)
    assert "norm-variance-estimator" in codes
    assert behaviour.norm_variance == "biased"


class NoMemoryFormatTo(nn.BatchNorm2d):
    """A .to() override that refuses memory_format (a port that re-implemented .to())."""

    def to(self, *args: object, **kwargs: object) -> nn.Module:  # type: ignore[override]
        if "memory_format" in kwargs:
            raise TypeError("to() got an unexpected keyword argument 'memory_format'")
        return super().to(*args, **kwargs)  # type: ignore[arg-type]


def test_only_the_variant_that_converts_the_module_is_blamed_for_a_refused_memory_format() -> None:
    result = layout_probes.memory_formats(context(NoMemoryFormatTo), (4,))
    assert result.tried == ["channels_last input (rank 4)", "channels_last module and input (rank 4)"]
    assert len(result.errors) == 1
    assert result.errors[0].startswith("channels_last module and input (rank 4): ")
    assert "memory_format" in result.errors[0]


class RefusesChannelsLast(nn.BatchNorm2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_contiguous():
            raise RuntimeError("expects a contiguous input")
        return super().forward(x)


def test_a_variant_that_raises_does_not_stop_the_next_from_being_tried() -> None:
    result = layout_probes.memory_formats(context(RefusesChannelsLast), (4,))
    assert result.tried == ["channels_last input (rank 4)", "channels_last module and input (rank 4)"]
    assert [e.split(":")[0] for e in result.errors] == result.tried


class StatelessEvalOffOnChannelsLast(nn.BatchNorm2d):
    """No running statistics; the eval output is off by 1 on a channels_last input only."""

    def __init__(self, num_features: int, **kwargs: object) -> None:
        super().__init__(num_features, track_running_stats=False, **kwargs)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y + 1 if not self.training and not x.is_contiguous() else y


def test_outputs_are_compared_after_running_statistics_the_class_does_not_have() -> None:
    result = layout_probes.memory_formats(context(StatelessEvalOffOnChannelsLast), (4,))
    assert [e.split(" differs")[0] for e in result.errors] == [
        "channels_last input (rank 4): eval output", "channels_last module and input (rank 4): eval output"]


class InPlaceWithoutGrad(nn.BatchNorm2d):
    """An inference fast path: with autograd off it writes its result into the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if not torch.is_grad_enabled():
            return x.copy_(y)
        return y


def test_the_input_check_runs_without_grad_where_inference_fast_paths_write_in_place() -> None:
    from bnconform.probes import inputs

    writes = inputs.modified_inputs(context(InPlaceWithoutGrad))
    assert [call for call, _ in writes.calls] == ["train-mode forward (input check)", "eval-mode forward (input check)"]


class RenamedStatsBatchNorm(nn.Module):
    """torch's arithmetic with the running statistics under the names MEAN and VAR."""

    MEAN, VAR = "running_mean", "running_var"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer(self.MEAN, torch.zeros(num_features))
        self.register_buffer(self.VAR, torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.batch_norm(x, getattr(self, self.MEAN), getattr(self, self.VAR), self.weight, self.bias,
                                        self.training, self.momentum, self.eps)


class HalfRenamedBatchNorm(RenamedStatsBatchNorm):
    VAR = "var_avg"


class MeanRenamedBatchNorm(RenamedStatsBatchNorm):
    MEAN = "mean_avg"


@pytest.mark.parametrize(("cls", "names"), [
    (HalfRenamedBatchNorm, {"running_mean": ("running_mean", "name"), "running_var": ("var_avg", "behaviour")}),
    (MeanRenamedBatchNorm, {"running_mean": ("mean_avg", "behaviour"), "running_var": ("running_var", "name")}),
])
def test_a_statistic_found_by_name_does_not_end_the_search_for_the_other_by_behaviour(cls: type, names: dict) -> None:
    from bnconform.probes.basics import found_tensors

    found = found_tensors(context(cls))
    assert {role: (found.slots[role].name, found.slots[role].found_by) for role in names} == names


class FixedWidthTokenNorm(nn.Module):
    """Its width comes from `d_model`, a name bnconform does not read as the channel count."""

    def __init__(self, d_model: int = 5) -> None:
        super().__init__()
        self.inner = nn.BatchNorm1d(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def test_no_other_width_is_tried_where_no_argument_takes_the_channel_count() -> None:
    from bnconform.probes.domain import channel_scan

    ctx = context(FixedWidthTokenNorm)
    assert ctx.domain.channels_honoured
    assert channel_scan(ctx, ctx.domain.probe_rank, ctx.domain.batch) == {}


def seeded(spec: object = "pytorch", *, source: str, axes: tuple[int, ...] | None = None, share: float = 1.0):
    """nn.BatchNorm2d's context as if its primary structure, variance share and eps were measured:
    the eps a module adds seen as 1e-3, so reading it would add eps-default."""
    ctx = context(nn.BatchNorm2d, spec)
    rank = ctx.primary_rank
    shape = statistics.Structure(rank, axes if axes is not None else ctx.spec.axes_for_rank(rank), "n/a", source,
                                 1.0, 60)
    for accepted in ctx.probe(basics.rank_support).accepted:
        measured(ctx, statistics.structure, accepted, value=dataclasses.replace(shape, rank=accepted))
    measured(ctx, statistics.denominator_variance_share, rank, value=share)
    measured(ctx, statistics.eps_behaviour, ctx.spec.norm_variance,
             value=statistics.EpsObservation("inside-sqrt", 0.5, 1e-3, 0.5, "inside-sqrt"))
    return ctx


@pytest.mark.parametrize("axes", [(0, 1, 2, 3), (1, 2, 3)], ids=["global", "per-sample"])
def test_the_eps_of_a_module_reducing_over_other_axes_is_not_read(axes: tuple[int, ...]) -> None:
    """The eps probe assumes the spec's axes: with statistics over other axes, the only deviation
    the explained behaviour takes in is the axes (what reduction-axes reports)."""
    behaviour, codes = explained.explained_behaviour(seeded(source="batch", axes=axes))
    assert codes == ("reduction-axes",) and behaviour.eps == load_spec("pytorch").eps


def test_a_denominator_that_ignores_the_variance_explains_an_output_mismatch() -> None:
    spec = dataclasses.replace(load_spec("pytorch"), train_uses=fresh("batch"))  # as read from a spec file
    assert explained.unmodelled_deviations(seeded(spec, source="batch", share=0.0)) == ("norm-variance-estimator",)


@pytest.mark.parametrize(("source", "axes"), [("running", None), ("other", None), ("batch", (1, 2, 3))],
                         ids=["running-statistics", "other-statistics", "per-sample"])
def test_only_per_channel_batch_normalization_is_read_as_ignoring_the_variance(
        source: str, axes: tuple[int, ...] | None) -> None:
    """A module that normalizes with other statistics has a denominator that does not follow the
    batch's variance too: that is train-uses-running-stats' or reduction-axes' finding, not this one."""
    assert explained.unmodelled_deviations(seeded(source=source, axes=axes, share=0.0)) == ()


def test_a_structure_probe_that_cannot_run_leaves_no_unmodelled_deviation() -> None:
    ctx = context(nn.BatchNorm2d)
    probe_failed(ctx, statistics.structure, ctx.primary_rank, error=UserCodeError("a forward", "boom"))
    assert explained.unmodelled_deviations(ctx) == ()
