"""The running-statistics probes (bnconform.probes.running) on classes written for one question
each: what one update, momentum=None, the counter and the trace report (issue 13)."""

from __future__ import annotations

import dataclasses
import math
import statistics

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnconform.probes import running
from bnconform.spec import load_spec
from tests._contexts import context
from tests.wild.global_stats import GlobalBatchNorm
from tests.wild.stats import AttachedStatsBatchNorm, ParameterStatsBatchNorm, _TorchLike


class VarOnly(nn.BatchNorm2d):
    """Updates running_var; running_mean stays where it was."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept = self.running_mean.clone()
        y = super().forward(x)
        self.running_mean.copy_(kept)
        return y


def test_a_running_mean_that_never_moves_leaves_the_variance_ratio_unmeasured() -> None:
    update = running.one_update(context(VarOnly))
    assert update.new_weight == 0.0 and update.moved
    assert math.isnan(update.var_ratio)


class DropsTheMean(nn.BatchNorm2d):
    """Empties running_mean in training step `drop_at` (and every step after it)."""

    drop_at = 1
    steps = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        self.steps += 1
        if self.steps >= self.drop_at:
            self.running_mean = torch.zeros(0)
        return y


def test_momentum_none_names_the_step_where_the_running_mean_became_unreadable() -> None:
    ctx = context(DropsTheMean)
    observed = running.cumulative(ctx)
    assert observed == running.Cumulative((), f"the running mean is not {ctx.channels} readable values after step 1")


class DropsTheMeanOnItsSecondStep(DropsTheMean):
    drop_at = 2


def test_momentum_none_counts_steps_from_one() -> None:
    ctx = context(DropsTheMeanOnItsSecondStep)
    observed = running.cumulative(ctx)
    assert observed.error == f"the running mean is not {ctx.channels} readable values after step 2"
    assert len(observed.weights) == 1


class PerPositionMean(nn.BatchNorm2d):
    """Keeps a running mean per position, (C, H, W), after its first training step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        self.running_mean = x.detach().mean(0)
        return y


class PerPositionVar(nn.BatchNorm2d):
    """Keeps running_var per position, (C, H, W), after a training step; running_mean stays (C,)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        self.running_var = x.detach().var(0)
        return y


def test_one_update_calls_a_running_var_of_more_than_c_values_unreadable() -> None:
    update = running.one_update(context(PerPositionVar))
    assert update.readable is False and math.isnan(update.new_weight)


def test_one_update_calls_a_running_mean_of_more_than_c_values_unreadable() -> None:
    update = running.one_update(context(PerPositionMean))
    assert update.readable is False and math.isnan(update.new_weight)


def test_momentum_none_calls_a_running_mean_of_more_than_c_values_unreadable() -> None:
    ctx = context(PerPositionMean)
    observed = running.cumulative(ctx)
    assert observed == running.Cumulative((), f"the running mean is not {ctx.channels} readable values after step 1")


def test_the_counter_expects_one_step_when_the_spec_does_not_update_under_no_grad() -> None:
    spec = dataclasses.replace(load_spec("pytorch"), update_under_no_grad=False)
    observed = running.counter(context(nn.BatchNorm2d, spec))
    assert (observed.expected, observed.value) == (1, 2.0)
    assert running.counter(context(nn.BatchNorm2d)).expected == 2


def test_the_trace_starts_at_the_initial_statistics_and_records_every_step() -> None:
    trace = running.trace(context(nn.BatchNorm2d))
    assert trace.steps == list(range(running.TRACE_STEPS + 1))
    assert (trace.mean[0], trace.var[0]) == (0.0, 1.0)
    mean, var = 0.0, 1.0  # channel 0 under torch's update (momentum 0.1, unbiased batch variance)
    for step, (batch_mean, batch_var) in enumerate(zip(trace.batch_means, trace.batch_vars, strict=True), start=1):
        mean, var = 0.9 * mean + 0.1 * batch_mean, 0.9 * var + 0.1 * batch_var
        assert math.isclose(trace.mean[step], mean, rel_tol=1e-5) and math.isclose(trace.var[step], var, rel_tol=1e-5)


def test_the_trace_records_one_statistic_shared_by_every_channel() -> None:
    trace = running.trace(context(GlobalBatchNorm))
    assert trace.steps == list(range(running.TRACE_STEPS + 1)) and len(trace.mean) == len(trace.steps)


def test_the_trace_s_batches_scatter_around_mean_2_and_std_1_5() -> None:
    """What makes a running mean that follows the last batch (inverted momentum) visibly jumpy
    in the plot: channel 0's batch means spread about 0.8 around 2, its stds about 30% around 1.5."""
    trace = running.trace(context(nn.BatchNorm2d))
    means, log_stds = trace.batch_means, [0.5 * math.log(v) for v in trace.batch_vars]
    # Bounds of about two standard errors of 20 draws around the design (sd 0.8; log-sd 0.3).
    assert abs(statistics.fmean(means) - 2.0) < 0.4 and 0.6 < statistics.stdev(means) < 1.0
    assert abs(statistics.fmean(log_stds) - math.log(1.5)) < 0.1 and 0.2 < statistics.stdev(log_stds) < 0.4


def test_one_update_reads_statistics_of_hundreds_of_channels() -> None:
    """Sizes compared by value: 300 channels is past CPython's cache of small ints."""
    ctx = context(nn.BatchNorm2d, num_features=300)
    update = running.one_update(ctx)
    assert ctx.channels == 300 and update.readable and math.isclose(update.new_weight, 0.1, rel_tol=1e-6)


class ShapedStatistics(nn.BatchNorm2d):
    """Running statistics stored in a broadcastable shape: (1, C, 1, 1) as in the D2L tutorial,
    or (C, 1, 1)."""

    shape: tuple[int, ...] = (1, -1, 1, 1)

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        shape = tuple(num_features if s == -1 else s for s in self.shape)
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean.view(-1), self.running_var.view(-1), self.weight, self.bias,
                            self.training, self.momentum, self.eps)


class TrailingShapedStatistics(ShapedStatistics):
    shape = (-1, 1, 1)


def test_statistics_of_another_shape_than_c_are_misshapen() -> None:
    for cls in (ShapedStatistics, TrailingShapedStatistics):
        assert running.buffers(context(cls)).bad_shape is True, cls.__name__
    assert running.buffers(context(nn.BatchNorm2d)).bad_shape is False


class LeafStatsRequiringGrad(_TorchLike):
    """Registered buffers that require grad, moved in place under no_grad: leaves, no history."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__(num_features, eps, momentum)
        self.running_mean.requires_grad_(True)
        self.running_var.requires_grad_(True)


def test_history_and_leaves_requiring_grad_are_told_apart_and_a_parameter_is_neither() -> None:
    attached = running.buffers(context(AttachedStatsBatchNorm))
    assert (attached.history, attached.requiring_grad) == (["running_mean", "running_var"], [])
    leaves = running.buffers(context(LeafStatsRequiringGrad))
    assert (leaves.history, leaves.requiring_grad) == ([], ["running_mean", "running_var"])
    parameters = running.buffers(context(ParameterStatsBatchNorm))
    assert (parameters.history, parameters.requiring_grad) == ([], [])


def test_buffers_requiring_grad_fail_running_stats_grad_with_no_claim_that_the_step_made_history() -> None:
    from bnconform.api import run_check

    (finding,) = [f for f in run_check(LeafStatsRequiringGrad)["findings"] if f["code"] == "running-stats-grad"]
    assert finding["message"].startswith("running_mean, running_var require grad although no training step gave")
    assert finding["observed"] == "running_mean, running_var have requires_grad=True"
    assert "grad_fn" not in finding["observed"]


class ResetsEveryFifthStep(nn.BatchNorm2d):
    """Empties its running statistics on every fifth training step and recreates them lazily."""

    steps = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.running_mean.numel() == 0:
            self.running_mean, self.running_var = torch.zeros_like(self.weight), torch.ones_like(self.weight)
        y = super().forward(x)
        if self.training:
            self.steps += 1
            if self.steps % 5 == 0:
                self.running_mean, self.running_var = torch.zeros(0), torch.zeros(0)
        return y


def test_the_trace_ends_at_the_first_step_that_left_a_statistic_unreadable() -> None:
    observed = running.trace(context(ResetsEveryFifthStep))
    assert observed.steps == [0, 1, 2, 3, 4]
    assert len(observed.mean) == len(observed.var) == 5 and len(observed.batch_means) == 4


def test_a_running_variance_fits_a_quantity_only_within_a_tolerance_relative_to_its_weight() -> None:
    far_v = torch.tensor([9.0, 0.01, 4.0, 0.3, 25.0], dtype=torch.float64)
    var_b = torch.tensor([1.0, 2.0, 0.5, 1.5, 3.0], dtype=torch.float64)
    n = 20
    unbiased = var_b * n / (n - 1)
    for spread, fits in ((5e-5, "unbiased"), (4e-4, "other")):  # weight 0.1: the limit is 1e-4
        weights = 0.1 + spread * torch.linspace(0, 1, 5, dtype=torch.float64)
        _, name = running.var_update(far_v + weights * (unbiased - far_v), far_v, var_b, n)
        assert name == fits, (spread, name)


def test_the_first_step_that_moves_the_running_statistics_is_found_within_four_steps() -> None:
    from tests.wild.stats import EveryOtherStepBatchNorm, StaleStatsBatchNorm

    assert running.first_moving_step(context(nn.BatchNorm2d)) == 1
    assert running.first_moving_step(context(EveryOtherStepBatchNorm)) == 2
    assert running.first_moving_step(context(StaleStatsBatchNorm)) is None


def every_nth_step(n: int) -> type[nn.BatchNorm2d]:
    class EveryNthStepBatchNorm(nn.BatchNorm2d):
        """Blends the batch into its running statistics on every n-th training step only."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not self.training:
                return super().forward(x)
            self.num_batches_tracked.add_(1)
            update = int(self.num_batches_tracked) % n == 0
            stats = (self.running_mean, self.running_var) if update else (None, None)
            return F.batch_norm(x, *stats, self.weight, self.bias, True, self.momentum, self.eps)

    return EveryNthStepBatchNorm


@pytest.mark.parametrize(("n", "found"), [(3, 3), (4, 4), (5, None)])
def test_a_first_move_is_looked_for_in_four_steps_and_no_more(n: int, found: int | None) -> None:
    assert running.first_moving_step(context(every_nth_step(n))) == found


class RoundingDriftBatchNorm(nn.BatchNorm2d):
    """Never blends the batch in, but its running statistics drift by 1e-7 of their value each
    training step (a rewrite that rounds, say): far below a weight of MOVED toward the batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            for stat in (self.running_mean, self.running_var):
                stat.mul_(1 + 1e-7)
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


def test_rounding_of_the_running_statistics_is_not_a_move() -> None:
    assert running.first_moving_step(context(RoundingDriftBatchNorm)) is None


class OneMeanPerTwoChannels(nn.BatchNorm2d):
    """Keeps fewer running-mean values than channels after its first training step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        self.running_mean = self.running_mean[: x.shape[1] // 2].clone()
        return y


def test_one_update_calls_a_running_mean_of_fewer_than_c_values_unreadable() -> None:
    update = running.one_update(context(OneMeanPerTwoChannels))
    assert update.readable is False and math.isnan(update.new_weight)


class TwoMeansPerChannel(nn.BatchNorm2d):
    """Normalizes with the batch's statistics and stores each channel's batch mean twice in
    running_mean (2C values); running_var never moves."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.detach().mean((0, 2, 3))
        self.running_mean = torch.cat([mean, mean])
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


def test_a_running_mean_of_more_than_c_values_is_no_move_of_the_c_it_started_with() -> None:
    assert running.first_moving_step(context(TwoMeansPerChannel)) is None


class FewerMeansThanChannels(nn.BatchNorm2d):
    """Normalizes with the batch's statistics and keeps only the first two channels' batch means
    in running_mean; running_var never moves."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.running_mean = x.detach().mean((0, 2, 3))[:2].clone()
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


def test_a_running_mean_of_fewer_than_c_values_is_no_move_of_the_c_it_started_with() -> None:
    assert running.first_moving_step(context(FewerMeansThanChannels)) is None


class ZeroesItsMean(nn.BatchNorm2d):
    """Resets running_mean to 0 on every training step; running_var never moves."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.running_mean.zero_()
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


def test_a_running_mean_reset_to_zero_has_moved_by_its_whole_value() -> None:
    assert running.first_moving_step(context(ZeroesItsMean)) == 1


class ChannelMomenta(nn.BatchNorm2d):
    """Blends each channel with its own momentum: 0.25 in even channels, 0.5 in odd ones."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        before = self.running_mean.clone()
        y = super().forward(x)
        with torch.no_grad():
            moved = self.running_mean - before  # 0.1 of the way to the batch mean
            momenta = torch.tensor([0.25, 0.5] * x.shape[1], dtype=before.dtype)[: x.shape[1]]
            self.running_mean.copy_(before + moved / 0.1 * momenta)
        return y


def test_channels_blended_with_different_weights_are_not_one_per_channel_blend() -> None:
    update = running.one_update(context(ChannelMomenta))
    assert update.spread == pytest.approx(0.25, abs=1e-6) and not update.per_channel


class EmptiedStatistics(nn.BatchNorm2d):
    """Replaces its running mean with an empty tensor in the first training step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        self.running_mean = torch.zeros(0)
        return y


def test_the_trace_of_statistics_emptied_in_a_step_ends_before_that_step() -> None:
    observed = running.trace(context(EmptiedStatistics))
    assert observed.steps == [0] and len(observed.mean) == 1


def test_the_first_update_of_a_cumulative_average_gives_the_batch_all_the_weight() -> None:
    from bnconform.api import target_from_object
    from bnconform.construct import Builder
    from bnconform.context import RunContext, RunSettings

    pinned = RunContext(load_spec("pytorch"), Builder(target_from_object(nn.BatchNorm2d), {"momentum": None}),
                        RunSettings())  # --init momentum=None
    assert running.first_step_weight(pinned) == 1.0


class NoMeanValues(nn.BatchNorm2d):
    """A running mean without values from construction on (statistics disabled by hand); forward
    normalizes with the batch's statistics and leaves the running ones alone."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.running_mean = torch.zeros(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)


def test_momentum_none_says_the_running_mean_was_unreadable_before_the_first_step() -> None:
    ctx = context(NoMeanValues)
    observed = running.cumulative(ctx)
    assert observed.error == f"the running mean is not {ctx.channels} readable values before step 1"
