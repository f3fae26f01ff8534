"""The normalization probes (bnconform.probes.statistics): the per-channel fit, the fused-ReLU
fit, where the statistics come from, which estimator and axes, eps and stability, measured on
outputs built with known statistics and on one-bug corpus classes (issue 13)."""

from __future__ import annotations

import functools
import importlib
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnconform.probes import statistics
from bnconform.probes.common import per_channel
from tests._contexts import context

MEAN = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
STD = torch.tensor([0.5, 2.0, 1.5], dtype=torch.float64)


def corpus(name: str) -> type:
    return importlib.import_module(f"tests.corpus.{name}").BatchNorm


def data(shape: tuple[int, ...] = (4, 3, 5, 5), seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 + 1


def normalized(x: torch.Tensor, axis: int = 1) -> torch.Tensor:
    view = [1] * x.dim()
    view[axis] = -1
    return (x - MEAN.view(view)) / STD.view(view)


@pytest.mark.parametrize("axis", [1, -1])
def test_the_fit_recovers_the_mean_and_denominator_of_each_channel(axis: int) -> None:
    x = data((4, 5, 5, 3) if axis == -1 else (4, 3, 5, 5))
    fit = statistics.fit_per_channel(x, normalized(x, axis), axis)
    assert torch.allclose(fit.shift, MEAN) and torch.allclose(fit.scale, STD) and fit.residual < 1e-12


@pytest.mark.parametrize(("size", "offset"), [(1.0, 0.0), (1e-6, 0.0), (1.0, 1000.0)])
def test_an_output_no_affine_map_of_the_input_fits_with_a_large_residual(size: float, offset: float) -> None:
    """Relative to the output's own spread: a tiny output, or one far from 0, is no closer to affine."""
    x = data()
    assert statistics.fit_per_channel(x, offset + size * x.pow(2), 1).residual > 0.1


def test_a_normalization_clipped_at_zero_is_fitted_as_a_fused_relu() -> None:
    x = data()
    fit, activation = statistics.fit_with_activation(x, F.relu(normalized(x)), 1)
    assert activation == "relu" and torch.allclose(fit.shift, MEAN) and torch.allclose(fit.scale, STD)
    fit, activation = statistics.fit_with_activation(x, normalized(x), 1)
    assert activation == "" and fit.residual < 1e-12


def test_an_exactly_affine_output_whose_minimum_is_zero_is_not_read_as_clipped() -> None:
    x = data()
    y = normalized(x)
    y = y - y.amin(dim=(0, 2, 3), keepdim=True)  # affine per channel, >= 0, one exact 0 per channel
    fit, activation = statistics.fit_with_activation(x, y, 1)
    assert activation == "" and fit.residual < 1e-12


def test_three_unclipped_values_per_channel_are_enough_for_a_clipped_fit() -> None:
    x = data((4, 3, 5))
    fourth_largest = x.transpose(0, 1).reshape(3, -1).sort(dim=1, descending=True).values[:, 3]
    y = F.relu(x - fourth_largest.view(1, 3, 1))  # exactly three positive values per channel
    fit = statistics.fit_clipped(x, y, 1)
    assert fit is not None and torch.allclose(fit.shift, fourth_largest.double())
    assert torch.allclose(fit.scale, torch.ones(3, dtype=torch.float64))


def test_outputs_that_are_not_a_clipped_normalization_have_no_clipped_fit() -> None:
    x = data()
    y = F.relu(normalized(x))
    assert statistics.fit_clipped(x, y - 0.1, 1) is None  # negative values: not a ReLU's output
    assert statistics.fit_clipped(x, y + 0.1, 1) is None  # no zeros: nothing was clipped
    sparse = y.clone()
    sparse[:, 0] = 0.0
    sparse[0, 0, 0, :2] = 1.0  # two positive values in channel 0: too few to fit
    assert statistics.fit_clipped(x, sparse, 1) is None
    holes = y.clone()
    holes[y > 1.0] = 0.0  # zeros where the normalization is well above 0: clipped, but not by a ReLU
    assert statistics.fit_clipped(x, holes, 1) is None
    dipped = y.clone()
    dipped[normalized(x) < -0.5] = -0.5  # a small negative value where the normalization is negative
    assert statistics.fit_clipped(x, dipped, 1) is None
    clipped_fit = statistics.fit_clipped(x, y, 1)
    assert clipped_fit is not None and clipped_fit.residual < 1e-12


def test_zeros_where_the_normalization_is_still_slightly_positive_are_not_a_relu() -> None:
    """A threshold just above 0 (nn.Threshold(1e-6, 0) after the normalization) clips values a
    ReLU would keep: even an affine part of 1e-7 at a zero rules the ReLU out."""
    std = torch.tensor([0.5, 1.7, 1.5], dtype=torch.float64)  # not integers: no exact powers
    x = data()
    x[1, 2, 2, 2] = MEAN[2] + 1e-7 * std[2]
    z = (x - MEAN.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    assert statistics.fit_clipped(x, F.relu(z), 1) is not None
    assert statistics.fit_clipped(x, F.threshold(z, 1e-6, 0.0), 1) is None
    x[2, 0, 1, 1] = MEAN[0] + 1.5e-9 * std[0]  # a normalized 1.5e-9 in the channel of std 0.5
    z = (x - MEAN.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    assert statistics.fit_clipped(x, F.threshold(z, 2e-9, 0.0), 1) is None


def fit_with_shift(shift: torch.Tensor) -> statistics.Fit:
    return statistics.Fit(torch.ones(3, dtype=torch.float64), shift.double(), 0.0)


@pytest.mark.parametrize("blend, source", [
    (1.0, "batch"), (0.0, "running"), (0.1, "running"), (-0.0005, "running"), (0.998, "running"),
    (0.9995, "other"), (-0.01, "other"), (0.5, "running"),
])
def test_the_source_of_the_mean_is_told_by_its_place_between_running_and_batch(blend: float, source: str) -> None:
    far = per_channel(statistics.STRUCTURE_RUNNING[0], 3)
    batch = torch.zeros(3, dtype=torch.float64)  # near 0, so allclose's relative part does not hide a blend
    shift = far + blend * (batch - far)
    assert statistics.statistics_source(fit_with_shift(shift), batch, 3) == source


def test_a_mean_blended_differently_per_channel_is_from_other_statistics() -> None:
    far = per_channel(statistics.STRUCTURE_RUNNING[0], 3)
    batch = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    shift = far + torch.tensor([0.1, 0.2, 0.1], dtype=torch.float64) * (batch - far)
    assert statistics.statistics_source(fit_with_shift(shift), batch, 3) == "other"


@pytest.mark.parametrize("ratio, estimator", [
    (1.0, "biased"), (1.004, "biased"), (0.996, "biased"), (1.006, "other"), (10 / 9, "unbiased"),
    (10 / 9 * 1.004, "unbiased"), (10 / 9 * 1.006, "other"), (1.3, "other"),
])
def test_the_estimator_is_the_one_within_half_a_percent(ratio: float, estimator: str) -> None:
    assert statistics.nearest_estimator(ratio, 10) == estimator


def test_search_axes_finds_the_axes_a_normalization_used() -> None:
    ctx = context(nn.BatchNorm2d)
    x = data()
    per_sample = F.instance_norm(x, eps=ctx.spec.eps)
    per_channel_y = F.batch_norm(x, None, None, training=True, eps=ctx.spec.eps)
    assert statistics.search_axes(ctx, x, per_channel_y) == (0, 2, 3)
    assert statistics.search_axes(ctx, x, per_sample) == (2, 3)
    assert statistics.search_axes(ctx, x, x.pow(3)) is None


def test_axes_holding_one_value_predict_nothing() -> None:
    ctx = context(nn.BatchNorm2d)
    x = data((1, 3, 5, 5))
    assert statistics.predicts(ctx, x, x, (0,), "biased") is False
    assert statistics.predicts(ctx, x, F.instance_norm(x, eps=ctx.spec.eps), (2, 3), "biased") is True


def test_axes_holding_two_values_are_a_hypothesis_like_any_other() -> None:
    ctx = context(nn.BatchNorm2d)
    x = data((2, 3, 5, 5))
    per_position = (x - x.mean(0)) / (x.var(0, unbiased=False) + ctx.spec.eps).sqrt()
    assert statistics.predicts(ctx, x, per_position, (0,), "biased") is True


@pytest.mark.parametrize(("off", "predicted"), [(0.004, True), (0.006, False)])
def test_a_hypothesis_predicts_an_output_within_half_a_percent_of_its_peak(off: float, predicted: bool) -> None:
    ctx = context(nn.BatchNorm2d)
    x = data()
    y = F.instance_norm(x, eps=ctx.spec.eps)
    peak = float(y.abs().max())
    y.view(-1)[7] += off * peak  # one value off by `off` of the largest output
    assert statistics.predicts(ctx, x, y, (2, 3), "biased") is predicted


def test_spread_is_the_range_relative_to_the_mean_magnitude() -> None:
    assert statistics.spread(torch.tensor([1.0, 2.0, 3.0])) == 1.0
    assert statistics.spread(torch.tensor([-2.0, 2.0])) == 2.0


def test_the_unbiased_variance_is_scaled_by_n_over_n_minus_1() -> None:
    var = torch.tensor([2.0, 4.0])
    assert statistics.variance_used(var, "biased", 5).tolist() == [2.0, 4.0]
    assert statistics.variance_used(var, "unbiased", 5).tolist() == [2.5, 5.0]


@pytest.mark.parametrize("cls, placement", [
    (nn.BatchNorm2d, "inside-sqrt"), ("eps_placement", "outside-sqrt"), ("eps_ignored", "ignored"),
])
def test_explicit_eps_placement(cls: type | str, placement: str) -> None:
    ctx = context(corpus(cls) if isinstance(cls, str) else cls)
    observed = statistics.eps_behaviour(ctx, "biased")
    assert observed.placement == placement
    if placement == "inside-sqrt":
        assert abs(observed.explicit_value - statistics.EXPLICIT_EPS) < 1e-6
        assert abs(observed.default_value - 1e-5) < 1e-8 and observed.default_placement == "inside-sqrt"


def test_a_default_eps_other_than_the_spec_s_is_measured() -> None:
    observed = statistics.eps_behaviour(context(corpus("eps_default")), "biased")
    assert observed.placement == "inside-sqrt" and abs(observed.default_value / 1e-5 - 1) > 0.5


class HandWritten(nn.Module):
    """A from-scratch BatchNorm with affine parameters; each subclass writes its own denominator."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def denominator(self, var: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axes = [0, *range(2, x.dim())]
        mean = x.mean(dim=axes, keepdim=True)
        var = x.var(dim=axes, unbiased=False, keepdim=True)
        view = [1, -1] + [1] * (x.dim() - 2)
        return (x - mean) / self.denominator(var) * self.weight.view(view) + self.bias.view(view)


class StdPlusSmallEps(HandWritten):
    """`x / (std + eps)` with eps = 1e-6 fixed: a tenth of the spec's, outside the root."""

    def denominator(self, var: torch.Tensor) -> torch.Tensor:
        return var.sqrt() + 1e-6


def test_a_small_default_eps_is_read_with_the_placement_that_makes_it_one_value() -> None:
    """Only when every placement implies next to nothing (an ignored eps) does the spec's placement
    decide; 1e-6 outside the root is a tenth of the spec's eps, not nothing."""
    value, placement = statistics.default_eps(context(StdPlusSmallEps), 2, "biased", "untested")
    assert placement == "outside-sqrt" and abs(value / 1e-6 - 1) < 1e-3


def test_a_two_pass_variance_is_stable_and_a_cancelling_one_is_not() -> None:
    assert statistics.stability(context(nn.BatchNorm2d), "biased").relative_error < 1e-3
    unstable = statistics.stability(context(corpus("unstable_variance")), "biased")
    assert unstable.relative_error > 0.05 and unstable.mean_offset == 3000.0


class RecordsInput(nn.BatchNorm2d):
    seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        RecordsInput.seen.append(x.detach().clone())
        return super().forward(x)


def test_the_stability_finding_names_the_mean_the_class_was_given() -> None:
    """The finding says "in float32 with mean 3000": no channel the class saw is far past that."""
    RecordsInput.seen = []
    offset = statistics.stability(context(RecordsInput), "biased").mean_offset
    x = RecordsInput.seen[-1]
    means = x.double().mean(dim=(0, 2, 3)).abs()
    assert x.dtype == torch.float32
    assert offset * 0.6 <= float(means.min()) and float(means.max()) <= offset * 1.4


@pytest.mark.parametrize("name, source", [
    ("reference", "batch"), ("train_uses_running_stats_previous", "running"),
    ("train_uses_running_stats_updated", "running"),
])
def test_structure_tells_batch_from_running_statistics(name: str, source: str) -> None:
    ctx = context(corpus(name))
    observed = statistics.structure(ctx, ctx.primary_rank)
    assert observed.source == source and observed.axes == ctx.spec.axes_for_rank(ctx.primary_rank)
    assert observed.estimator == ("biased" if source == "batch" else "n/a")


class CentresOffTheMean(nn.BatchNorm2d):
    """Subtracts the batch mean plus 0.01: close enough that the spec's axes predict the output
    within the structure tolerance, yet not the batch mean the source is told by."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        mean = x.mean(dim=(0, 2, 3), keepdim=True) + 0.01
        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        return (x - mean) / (var + self.eps).sqrt() * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def test_a_mean_slightly_off_over_the_spec_s_axes_is_other_statistics_not_the_batch() -> None:
    ctx = context(CentresOffTheMean)
    observed = statistics.structure(ctx, ctx.primary_rank)
    assert (observed.source, observed.axes) == ("other", ctx.spec.axes_for_rank(ctx.primary_rank))


def test_structure_of_per_sample_statistics_names_their_axes() -> None:
    ctx = context(corpus("reduction_axes_per_sample"))
    observed = statistics.structure(ctx, ctx.primary_rank)
    # Not a per-channel affine map of the input: the axes are searched, the source is "other".
    assert observed.source == "other" and observed.axes is not None and 0 not in observed.axes


class WithoutEps(HandWritten):
    """From-scratch homework with no eps at all: the structure is still measured."""

    def denominator(self, var: torch.Tensor) -> torch.Tensor:
        return var.sqrt()


def test_structure_is_measured_for_a_class_without_eps() -> None:
    ctx = context(WithoutEps)
    observed = statistics.structure(ctx, 4)
    assert (observed.source, observed.estimator, observed.axes) == ("batch", "biased", (0, 2, 3))


class SeededOnFirstBatch(nn.BatchNorm2d):
    """Normalizes its first training batch with that batch's statistics, which seed the running
    ones; every later batch with the running statistics (batch statistics on the first step only)."""

    def __init__(self, num_features: int, **kwargs: object) -> None:
        super().__init__(num_features, **kwargs)  # type: ignore[arg-type]
        self.seeded = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not self.seeded:
            self.seeded = True
            return super().forward(x)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def test_structure_is_measured_after_warm_up_steps_where_first_step_behaviour_is_over() -> None:
    observed = statistics.structure(context(SeededOnFirstBatch), 4)
    assert observed.source == "running"


def test_structure_of_an_output_that_ignores_the_input_is_constant() -> None:
    class Constant(nn.BatchNorm2d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros_like(x)

    ctx = context(Constant)
    assert statistics.structure(ctx, ctx.primary_rank).source == "constant"


class MeanOnlyTrainsOnRunningMean(HandWritten):
    """Mean-only BatchNorm (no running_var) that centres training batches with its running mean,
    updated first: the running mean is the one statistic it keeps, and it is reset like any."""

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axes = [0, *range(2, x.dim())]
        view = [1, -1] + [1] * (x.dim() - 2)
        if self.training:
            self.running_mean.mul_(0.9).add_(0.1 * x.detach().mean(dim=axes))
        return (x - self.running_mean.view(view)) * self.weight.view(view) + self.bias.view(view)


def test_a_class_keeping_only_a_running_mean_has_it_reset_and_is_seen_normalizing_with_it() -> None:
    ctx = context(MeanOnlyTrainsOnRunningMean)
    observed = statistics.structure(ctx, ctx.primary_rank)
    assert observed.source == "running"


VARIANCES = per_channel([1.0, 4.0, 2.25], 5)


@pytest.mark.parametrize(("denominator", "share"), [
    (lambda var: (var + 1e-5).sqrt(), 1.0),  # divides by its batch std
    (lambda var: (var * 72 / 71 + 1e-5).sqrt(), 1.0),  # the unbiased variance
    (lambda var: var.sqrt() / 100, 1.0),  # a stray output factor changes nothing
    (lambda var: (var + 1.0).sqrt(), float(VARIANCES.mean() / (VARIANCES.mean() + 1))),  # eps = 1
    (lambda var: torch.ones_like(var), 0.0),  # does not divide at all
])
def test_the_variance_share_says_whether_the_denominator_follows_the_variance(denominator, share: float) -> None:
    measured = statistics.variance_share(denominator(VARIANCES), VARIANCES)
    assert measured == pytest.approx(share, abs=1e-5)
    assert statistics.ignores_variance(measured) == (share == 0.0)


def test_a_denominator_barely_moved_by_the_variance_is_still_following_it() -> None:
    """eps = 100: the variance is 2% of the squared denominator, just above the limit of 1%."""
    measured = statistics.variance_share((VARIANCES + 100.0).sqrt(), VARIANCES)
    assert 0.01 < measured < 0.03
    assert not statistics.ignores_variance(measured)


def test_one_channel_cannot_tell_whether_the_denominator_follows_the_variance() -> None:
    one = torch.ones(1, dtype=torch.float64)
    measured = statistics.variance_share(one, one)
    assert measured != measured  # NaN
    assert not statistics.ignores_variance(measured)


def test_a_centring_only_class_is_seen_ignoring_the_variance_and_a_torch_one_is_not() -> None:
    ctx = context(importlib.import_module("tests.wild.stats").MeanOnlyBatchNorm)
    assert statistics.denominator_variance_share(ctx, ctx.primary_rank) == pytest.approx(0.0, abs=1e-9)
    ctx = context(nn.BatchNorm2d)
    assert statistics.denominator_variance_share(ctx, ctx.primary_rank) == pytest.approx(1.0, rel=1e-3)


def test_a_fused_relu_class_follows_the_variance_through_its_clipped_fit() -> None:
    ctx = context(importlib.import_module("tests.wild.fused").BNReLU)
    assert statistics.denominator_variance_share(ctx, ctx.primary_rank) == pytest.approx(1.0, rel=1e-3)


def test_under_a_spec_normalizing_with_running_statistics_the_share_is_not_measured() -> None:
    ctx = context(nn.BatchNorm2d, "frozen")
    share = statistics.denominator_variance_share(ctx, ctx.primary_rank)
    assert math.isnan(share) and not statistics.ignores_variance(share)


def test_an_eps_that_could_not_be_measured_falls_back_to_the_spec_s_in_the_stability_probe() -> None:
    assert statistics.stability(context(nn.BatchNorm2d), "biased", float("nan")).relative_error < 1e-3


class EvalForgetsTheMean(nn.BatchNorm2d):
    """Eval divides by the running std but does not subtract the running mean."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        return x / torch.sqrt(self.running_var.view(1, -1, 1, 1) + self.eps)


def test_no_eps_is_read_from_an_eval_that_does_not_subtract_the_running_mean() -> None:
    assert statistics.eval_eps(context(nn.BatchNorm2d), "inside-sqrt") == pytest.approx(statistics.EXPLICIT_EPS)
    assert math.isnan(statistics.eval_eps(context(EvalForgetsTheMean), "inside-sqrt"))


class EvalWithNoise(nn.BatchNorm2d):
    """Eval normalizes with the running statistics and no eps, plus noise uncorrelated with x in
    each channel: the least-squares shift and scale are exact, only the residual shows the noise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        y = (x - self.running_mean.view(1, -1, 1, 1)) / torch.sqrt(self.running_var.view(1, -1, 1, 1))
        flat = x.transpose(0, 1).reshape(x.shape[1], -1).double()
        noise = torch.ones_like(flat)
        noise[:, ::2] = -1.0
        for basis in (torch.ones_like(flat), flat - flat.mean(dim=1, keepdim=True)):
            noise -= basis * (noise * basis).sum(dim=1, keepdim=True) / (basis * basis).sum(dim=1, keepdim=True)
        noise = noise.to(x.dtype).reshape(x.shape[1], x.shape[0], *x.shape[2:]).transpose(0, 1)
        return y + 0.1 * noise


def test_no_eps_is_read_from_an_eval_output_that_is_not_affine_in_the_input() -> None:
    assert math.isnan(statistics.eval_eps(context(EvalWithNoise), "inside-sqrt"))


class EpsRule(nn.BatchNorm2d):
    """Normalizes with the batch statistics, adding eps_used(eps) inside the square root in
    training and in eval."""

    def eps_used(self, eps: float) -> float:
        return eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, 0.1, self.eps_used(self.eps))


def eps_rule(rule: object) -> type[EpsRule]:
    return type("RuleEpsBatchNorm", (EpsRule,), {"eps_used": lambda self, eps: rule(eps)})


@pytest.mark.parametrize(("rule", "placement", "inside"), [
    (lambda eps: 1.0, "ignored", 1.0),        # hard-coded 1.0: more than some channels' variance
    (lambda eps: 0.25, "other", 0.25),        # hard-coded at the second request: cannot be told apart
    (lambda eps: eps / 5, "other", 0.1),      # follows the request, scaled: 0.1 then 0.05
    (lambda eps: eps / 2, "other", 0.25),     # follows the request, scaled: 0.25 then 0.125
])
def test_a_large_eps_is_ignored_only_when_a_second_request_adds_it_again(rule, placement: str,
                                                                        inside: float) -> None:
    found, measured = statistics.explicit_eps(context(eps_rule(rule)), 4, "biased")
    assert found == placement and measured == pytest.approx(inside, abs=1e-6)


def test_an_eps_scaled_up_is_another_eps_not_an_ignored_one() -> None:
    found, measured = statistics.explicit_eps(context(eps_rule(lambda eps: eps * 1.8)), 4, "biased")
    assert (found, round(measured, 6)) == ("other", 0.9)


class EvalEpsPerChannel(nn.BatchNorm2d):
    """Eval adds eps times factors[c] in channel c: no one eps."""

    factors: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        view = [1, -1] + [1] * (x.dim() - 2)
        eps = self.eps * self.factors[: x.shape[1]].to(x.dtype)
        denominator = (self.running_var + eps).sqrt().view(view)
        return (x - self.running_mean.view(view)) / denominator * self.weight.view(view) + self.bias.view(view)


@pytest.mark.parametrize("factors", [
    torch.tensor([1.0, 2.001, 1.5, 1.25, 1.75, 1.1, 1.9, 1.3]),  # the largest just over twice the smallest
    1 + 0.01 * torch.arange(0.0, 8.0),   # within 4% of each other
])
def test_an_eval_eps_that_differs_by_channel_is_not_read_as_one_eps(factors: torch.Tensor) -> None:
    cls = type("PerChannelEvalEps", (EvalEpsPerChannel,), {"factors": factors})
    assert math.isnan(statistics.eval_eps(context(cls), "inside-sqrt"))


class OutsideEps(nn.BatchNorm2d):
    """Adds its eps outside the square root, with two-pass statistics."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        view = [1, -1] + [1] * (x.dim() - 2)
        axes = [0] + list(range(2, x.dim()))
        mean = x.mean(axes, keepdim=True)
        std = (x - mean).pow(2).mean(axes, keepdim=True).sqrt()
        return (x - mean) / (std + self.eps) * self.weight.view(view) + self.bias.view(view)


def test_stability_reads_an_outside_placement_named_by_a_spec_file_string() -> None:
    # A placement read from a spec file is an equal string, not the probe's own literal object
    placement = "".join(["outside", "-sqrt"])
    ctx = context(functools.partial(OutsideEps, eps=0.5))
    assert statistics.stability(ctx, "biased", eps=0.5, placement=placement).relative_error < 1e-3
