"""Cases just either side of each judging threshold, so a loosened or tightened tolerance fails.

Every corpus bug is orders of magnitude past its threshold; these are not. Each test drives
one check (or its comparison) on a tiny class on a RunContext, without the whole run."""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
from torch import nn

from bnconform.checks import momentum, normalization, output
from tests._contexts import context

# -- momentum: MOMENTUM_TOL (1e-3 absolute on the new batch's weight) -------------------------


def with_default_momentum(value: float) -> type:
    class DefaultMomentum(nn.BatchNorm1d):
        def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = value,
                     affine: bool = True, track_running_stats: bool = True) -> None:
            super().__init__(num_features, eps, momentum, affine, track_running_stats)

    DefaultMomentum.__qualname__ = DefaultMomentum.__name__ = f"DefaultMomentum{str(value).replace('.', '_')}"
    return DefaultMomentum


def test_a_default_momentum_5_percent_off_is_a_finding() -> None:
    verdict = momentum.momentum_default(context(with_default_momentum(0.105)))
    assert verdict.status == "failed", verdict
    assert "0.105" in verdict.observed


def test_a_default_momentum_off_by_rounding_only_passes() -> None:
    verdict = momentum.momentum_default(context(with_default_momentum(0.1000001)))
    assert verdict.status == "passed", verdict
    assert verdict.measurements["default"] == pytest.approx(0.1, abs=1e-5)


def test_momentum_tolerance_is_pinned() -> None:
    assert momentum.MOMENTUM_TOL == 1e-3
    assert momentum.close(0.1, 0.1009) and not momentum.close(0.1, 0.1011)


# -- output-mismatch: allowed = atol + rtol * |expected| (+ rounding of x) --------------------

OFFSET = {"value": 0.0}


class OffsetOutput(nn.BatchNorm1d):
    """torch's BatchNorm1d plus a constant offset set by the test (OFFSET)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + OFFSET["value"]


def output_error(offset: float) -> float:
    OFFSET["value"] = offset
    try:
        ctx = context(OffsetOutput)
        case = output.Case((4, 5, 3), [0.0] * 5, [1.0] * 5, [1.0] * 5, [0.0] * 5, salt=7)
        return output.compare(ctx, case).error
    finally:
        OFFSET["value"] = 0.0


def test_an_output_error_3x_the_float64_tolerance_fails() -> None:
    # tolerance.float64: atol = rtol = 1e-7; outputs near 0 allow ~1e-7, so 3e-7 is ~3x over.
    assert 1.5 < output_error(3e-7) <= 3.0


def test_an_output_error_half_the_float64_tolerance_passes() -> None:
    assert 0.2 < output_error(5e-8) <= 0.5


def test_the_exact_module_has_no_output_error() -> None:
    assert output_error(0.0) < 0.05


# -- unstable-variance: relative error of the normalizing variance <= 0.05 --------------------

VARIANCE_SCALE = {"value": 1.0}


class ScaledVariance(nn.BatchNorm1d):
    """Normalizes training batches with the biased variance times VARIANCE_SCALE (float32 safe)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        super().forward(x)  # keeps the running statistics as torch's
        axes = [0, *range(2, x.dim())]
        mean = x.mean(axes, keepdim=True)
        var = ((x - mean) ** 2).mean(axes, keepdim=True) * VARIANCE_SCALE["value"]
        view = [1, -1] + [1] * (x.dim() - 2)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight.view(view) + self.bias.view(view)


def unstable_variance(scale: float) -> Any:
    VARIANCE_SCALE["value"] = scale
    try:
        return normalization.unstable_variance(context(ScaledVariance))
    finally:
        VARIANCE_SCALE["value"] = 1.0


def test_a_variance_error_just_above_the_limit_fails() -> None:
    verdict = unstable_variance(1.08)
    assert verdict.status == "failed", verdict
    assert "relative error 0.0" in verdict.observed


def test_a_variance_error_just_below_the_limit_passes() -> None:
    verdict = unstable_variance(1.03)
    assert verdict.status == "passed", verdict
    assert 0.02 < verdict.measurements["relative_error"] < 0.05


# -- the other momentum checks on torch's class and one fault each ----------------------------


class InvertedFormula(nn.BatchNorm1d):
    """Gives the new batch 1 - momentum (a Keras-style formula behind PyTorch's default)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        momentum = self.momentum
        if momentum is not None:
            self.momentum = 1 - momentum
        try:
            return super().forward(x)
        finally:
            self.momentum = momentum


class InvertedMeanOnly(nn.BatchNorm1d):
    """running_mean gives the new batch 1 - momentum; running_var is torch's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.momentum is None:
            return super().forward(x)
        old = self.running_mean.clone()
        y = super().forward(x)
        w = 1 - self.momentum
        with torch.no_grad():
            self.running_mean.copy_((1 - w) * old + w * x.mean([0, *range(2, x.dim())]))
        return y


class HardCodedMomentum(nn.BatchNorm1d):
    """Takes a momentum argument but always uses 0.1 (None included)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        super().__init__(num_features, eps, 0.1)


def test_momentum_inverted_measures_both_weights_on_torch_batchnorm() -> None:
    verdict = momentum.momentum_inverted(context(nn.BatchNorm1d))
    assert verdict.measurements == {"default": pytest.approx(0.1), "explicit": pytest.approx(0.3)}


class FrozenUnlessDefaultMomentum(nn.BatchNorm1d):
    """Updates the running statistics only with the default momentum 0.1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.momentum == 0.1:
            return super().forward(x)
        return nn.functional.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


def test_momentum_ignored_is_not_measured_when_the_explicit_momentum_moves_nothing() -> None:
    verdict = momentum.momentum_ignored(context(FrozenUnlessDefaultMomentum))
    assert verdict.status == "skipped", verdict
    assert verdict.reason.startswith("cannot be measured: the running statistics do not move")


@pytest.mark.parametrize("check", [momentum.momentum_inverted, momentum.momentum_ignored,
                                   momentum.momentum_default, momentum.momentum_none])
def test_every_momentum_check_passes_on_torch_batchnorm(check: Any) -> None:
    verdict = check(context(nn.BatchNorm1d))
    assert verdict.status == "passed", verdict


def test_an_inverted_momentum_formula_is_found_with_the_explicit_momentum() -> None:
    verdict = momentum.momentum_inverted(context(InvertedFormula))
    assert verdict.status == "failed", verdict
    assert verdict.details["cause"] == "by formula"
    assert verdict.details["statistics"] == ["running_mean", "running_var"]
    assert verdict.details["mean_weight"] == pytest.approx(0.7, abs=1e-6)  # EXPLICIT_MOMENTUM 0.3 inverted


def test_an_inverted_running_mean_alone_reports_its_own_weight() -> None:
    verdict = momentum.momentum_inverted(context(InvertedMeanOnly))
    assert verdict.status == "failed", verdict
    assert verdict.details["statistics"] == ["running_mean"]
    assert verdict.details["var_weight"] == pytest.approx(0.3, abs=1e-6)
    assert verdict.observed.startswith("new-batch weight 0.7 (= 1 - 0.3) in running_mean"), verdict.observed


class InvertedFormulaDefault03(InvertedFormula):
    """The inverted formula with a default momentum equal to the probe's explicit 0.3."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.3) -> None:
        super().__init__(num_features, eps, momentum)


def test_an_inverted_formula_is_not_also_an_ignored_momentum() -> None:
    # default and momentum=0.3 both give 0.7: the same weight, but 1 - 0.3, so the argument is used
    ctx = context(InvertedFormulaDefault03)
    assert momentum.momentum_ignored(ctx).status == "passed"
    assert momentum.momentum_inverted(ctx).details["cause"] == "by formula"


def test_an_inverted_default_momentum_is_found_by_default_value() -> None:
    verdict = momentum.momentum_inverted(context(with_default_momentum(0.9)))
    assert verdict.status == "failed", verdict
    assert (verdict.details["cause"], verdict.details["construction"]) == ("by default value", "default construction")
    assert "weight 0.9" in verdict.observed


def test_an_inverted_default_momentum_is_not_also_a_wrong_default() -> None:
    # 0.9 is the spec's 0.1 inverted: momentum-inverted's finding, not a second one (and not a pass:
    # the default value is not the spec's)
    verdict = momentum.momentum_default(context(with_default_momentum(0.9)))
    assert verdict.status == "skipped", verdict
    assert verdict.reason.startswith("the default gives the new batch weight 0.9, 1 - the spec's 0.1")
    assert verdict.reason.endswith("(see momentum-inverted)")


def test_a_hard_coded_momentum_is_ignored_and_breaks_momentum_none() -> None:
    ctx = context(HardCodedMomentum)
    ignored = momentum.momentum_ignored(ctx)
    assert ignored.status == "failed", ignored
    assert "momentum=0.3 has no effect" in ignored.message
    none = momentum.momentum_none(ctx)
    assert none.status == "failed", none
    assert "[0.1, 0.1, 0.1]" in none.observed
    assert momentum.momentum_default(ctx).status == "passed"


class CumulativeOffByOne(nn.BatchNorm1d):
    """momentum=None weighs step n with 1/(n + 1) instead of 1/n."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.momentum is not None or not self.training:
            return super().forward(x)
        self.momentum = 1 / (int(self.num_batches_tracked) + 2)
        try:
            return super().forward(x)
        finally:
            self.momentum = None


def test_momentum_none_reports_the_weights_it_measured_to_four_digits() -> None:
    verdict = momentum.momentum_none(context(CumulativeOffByOne))
    assert verdict.status == "failed", verdict
    assert verdict.observed == "new-batch weights [0.5, 0.3333, 0.25] over 3 steps"


class GlobalRunningMean(nn.BatchNorm1d):
    """running_mean follows the mean over all channels: not a per-channel blend."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        old = self.running_mean.clone()
        y = super().forward(x)
        with torch.no_grad():
            self.running_mean.copy_(0.9 * old + 0.1 * x.mean())
        return y


def test_a_running_mean_not_per_channel_leaves_momentum_unmeasured_and_says_why() -> None:
    verdict = momentum.momentum_default(context(GlobalRunningMean, num_features=8))
    assert verdict.status == "skipped", verdict
    match = re.search(r"weights \[(.*)\]\)$", verdict.reason)
    assert match, verdict.reason
    weights = match.group(1).split(", ")
    assert len(weights) == 5  # the first five of 8 channels, rounded to 4 digits
    assert all(len(w.partition(".")[2]) <= 4 for w in weights)
    assert any(len(w.partition(".")[2]) == 4 for w in weights)


class NoMomentumArgument(nn.BatchNorm1d):
    """Takes no momentum argument (torch's default 0.1 inside)."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__(num_features, eps)


def test_a_class_without_a_momentum_argument_is_judged_by_its_default() -> None:
    ctx = context(NoMomentumArgument)
    assert momentum.momentum_inverted(ctx).status == "passed"
    assert momentum.momentum_ignored(ctx).reason == "the constructor takes no momentum argument"


def test_a_wrong_default_momentum_is_not_an_inverted_one() -> None:
    ctx = context(with_default_momentum(0.5))
    assert momentum.momentum_inverted(ctx).status == "passed"  # 0.5 is neither 0.1 nor 0.9
    assert momentum.momentum_default(ctx).status == "failed"


def test_a_default_kept_from_keras_or_flax_is_named_as_such() -> None:
    verdict = momentum.momentum_default(context(with_default_momentum(0.99)))
    assert verdict.status == "failed", verdict
    assert verdict.message.endswith("(0.99 is how a Keras/Flax/MXNet momentum, the weight of the OLD statistics,"
                                    " acts when used in PyTorch's formula)")


@pytest.mark.parametrize(("observed", "expected", "named"), [
    (0.99, 0.1, True), (0.5, 0.1, False), (0.5001, 0.1, True), (0.99, 0.5, False), (0.99, 0.4999, True),
    (0.2, 0.1, False), (0.01, 0.99, False),
])
def test_only_a_new_batch_weight_above_half_against_a_spec_below_half_reads_as_an_old_weight(
        observed: float, expected: float, named: bool) -> None:
    assert bool(momentum.old_weight_note(observed, expected)) is named


def test_the_momentum_checks_are_registered_under_their_codes() -> None:
    from bnconform.registry import get_check

    for code in ("momentum-inverted", "momentum-ignored", "momentum-default", "momentum-none"):
        assert get_check(code).fn is getattr(momentum, code.replace("-", "_"))


def test_momentum_none_is_skipped_under_a_spec_without_it() -> None:
    from tests.corpus.keras_reference import BatchNorm as KerasBatchNorm

    verdict = momentum.momentum_none(context(KerasBatchNorm, "keras"))
    assert (verdict.status, verdict.reason) == ("skipped", "the spec has no momentum=None")
