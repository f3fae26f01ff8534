"""The running-statistics probes (bnconform.probes.running) on classes written for one question
each: what one update, momentum=None, the counter and the trace report (issue 13)."""

from __future__ import annotations

import dataclasses
import math
import statistics

import torch
from torch import nn

from bnconform.probes import running
from bnconform.spec import load_spec
from tests._contexts import context
from tests.wild.global_stats import GlobalBatchNorm


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
    """Empties running_mean in its first training step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        self.running_mean = torch.zeros(0)
        return y


def test_momentum_none_names_the_step_where_the_running_mean_became_unreadable() -> None:
    ctx = context(DropsTheMean)
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
