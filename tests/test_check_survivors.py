"""Mutants of checks/ that outlived the corpus, the wild corpus and the golden reports (issue 13),
each killed here by a small class that reaches the branch no corpus class reaches.

Each test drives one check on a RunContext, as a run does after discovery, and asserts what the
user reads (status, reason, message), so a mutant that swaps a branch or a digit fails it."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import pytest
import torch
from torch import nn

from bnconform.checks import affine, basics, dtypes, gradients, inputs, layouts, modes, normalization, output, sequences
from bnconform.checks import running as running_checks
from bnconform.findings import Severity
from bnconform.spec import load_spec
from tests._contexts import context, measured
from tests.wild import stats as wild_stats


class OddInitialMean(nn.BatchNorm1d):
    """running_mean starts at 1/3 in every channel (a checkpoint's value, say)."""

    def __init__(self, num_features: int, **kwargs: Any) -> None:
        super().__init__(num_features, **kwargs)
        self.running_mean.fill_(1 / 3)


def test_initial_statistics_are_shown_to_four_decimals() -> None:
    verdict = running_checks.running_stats_init(context(OddInitialMean))
    assert verdict.status == "failed"
    assert verdict.observed.startswith("running_mean = [0.3333, 0.3333, 0.3333, 0.3333]"), verdict.observed


class NanMeanFrozenVar(nn.BatchNorm1d):
    """A training step writes NaN into running_mean and leaves running_var as it was."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self.running_mean.fill_(float("nan"))
        return nn.functional.batch_norm(x, self.running_mean.clone(), self.running_var.clone(), self.weight,
                                        self.bias, self.training, 0.0, self.eps)


def test_a_running_mean_that_turns_nan_is_not_called_unmoved() -> None:
    verdict = running_checks.running_stats_not_updated(context(NanMeanFrozenVar))
    assert verdict.status == "skipped", verdict
    assert verdict.reason == "cannot be measured: the running statistics could not be read after a step"


def test_an_inside_sqrt_class_fails_a_spec_that_places_eps_outside() -> None:
    spec = dataclasses.replace(load_spec("pytorch"), eps_placement="outside-sqrt")
    verdict = normalization.eps_placement(context(nn.BatchNorm1d, spec))
    assert (verdict.status, verdict.expected, verdict.observed) == ("failed", "outside-sqrt", "inside-sqrt"), verdict


class FixedStatistics(nn.BatchNorm1d):
    """Training normalizes with a fixed mean 0.25 and denominator 1.5 in every channel: neither
    the batch's statistics nor the running ones (the running update itself is torch's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        super().forward(x)
        view = [1, -1] + [1] * (x.dim() - 2)
        return (x - 0.25) / 1.5 * self.weight.view(view) + self.bias.view(view)


def test_training_with_other_statistics_shows_the_first_five_channels_of_what_it_used() -> None:
    verdict = normalization.train_uses_running_stats(context(FixedStatistics, num_features=7))
    assert verdict.status == "failed", verdict
    assert verdict.observed == "mean [0.25, 0.25, 0.25, 0.25, 0.25], denominator [1.5, 1.5, 1.5, 1.5, 1.5]"


def test_torch_running_var_under_a_biased_spec_names_both_estimators() -> None:
    verdict = running_checks.running_var_estimator(context(nn.BatchNorm1d, "mxnet"))
    assert verdict.status == "failed", verdict
    assert verdict.message == "running_var is updated with the unbiased batch variance; the spec stores the biased one"
    assert verdict.expected.startswith("biased (ratio to the biased variance 1, n="), verdict.expected
    assert verdict.observed.startswith("unbiased (ratio 1.0"), verdict.observed


def test_a_biased_class_fails_a_spec_that_normalizes_with_the_unbiased_variance() -> None:
    spec = dataclasses.replace(load_spec("pytorch"), norm_variance="unbiased")
    verdict = normalization.norm_variance_estimator(context(nn.BatchNorm1d, spec))
    assert verdict.status == "failed", verdict
    assert verdict.message == "Training normalizes with the biased variance; the spec uses the unbiased one"


class ViewStatistics(nn.BatchNorm2d):
    """Reads the input through x.view(N, C, -1): fine for contiguous and channels_last input,
    raises on a permuted one (exactly one non-contiguous variant fails)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.view(x.shape[0], x.shape[1], -1)
        return super().forward(x) + 0 * flat.sum()


class FlattenedBatchNorm(nn.Module):
    """Any rank through BatchNorm1d on x.view(N, C, -1): a channels_last input comes back
    channels-first, for rank 4 and 5 (eight problems)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x.view(x.shape[0], x.shape[1], -1)).view(x.shape)


def test_a_single_layout_problem_is_reported_without_a_count_of_more() -> None:
    verdict = layouts.non_contiguous(context(ViewStatistics))
    assert verdict.status == "failed", verdict
    assert verdict.message.startswith("permuted input (rank 4): train-mode forward on a permuted input")
    assert "more)" not in verdict.message and "; " not in verdict.observed


def test_many_layout_problems_show_six_and_count_the_rest_with_a_rank_4_repro() -> None:
    verdict = layouts.memory_format(context(FlattenedBatchNorm))
    assert verdict.status == "failed", verdict
    assert verdict.message.endswith(" (and 7 more)"), verdict.message
    assert len(verdict.observed.split("; ")) == 6, verdict.observed
    assert "memory_format=torch.channels_last)" in verdict.repro and "channels_last_3d" not in verdict.repro


class DetachedInput(nn.BatchNorm2d):
    """Normalizes x.detach(): no gradient reaches the input at all."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.detach())


def test_a_gradient_that_never_reaches_the_input_is_called_missing() -> None:
    verdict = gradients.grad_mismatch(context(DetachedInput))
    assert (verdict.status, verdict.observed) == ("failed", "input: missing"), verdict


def test_eps_is_not_measured_on_a_batch_normalizing_class_under_the_frozen_spec() -> None:
    verdict = normalization.eps_placement(context(nn.BatchNorm2d, "frozen"))
    assert verdict.status == "skipped", verdict
    assert verdict.reason == ("cannot be measured: training does not normalize with the running statistics"
                              " (see train-uses-running-stats)")


class MeanOnly(nn.BatchNorm1d):
    """Tracks a running mean only; eval divides by the batch's own standard deviation."""

    def __init__(self, num_features: int, **kwargs: Any) -> None:
        super().__init__(num_features, **kwargs)
        del self.running_var

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self.running_mean.mul_(0.9).add_(0.1 * x.mean(0))
        return (x - self.running_mean) / (x.var(0, unbiased=False) + self.eps).sqrt()


def test_sequences_need_both_running_statistics_to_follow() -> None:
    verdict = sequences.sequence_mismatch(context(MeanOnly))
    assert (verdict.status, verdict.reason) == ("skipped", "no running statistics to follow"), verdict


def test_a_fenced_import_that_changed_nothing_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The supervised worker fills import_changes; in process it is None (skipped). Here as the worker would.
    from bnconform.supervise.session import CURRENT

    monkeypatch.setattr(CURRENT, "import_changes", {})
    assert inputs.global_state_changed(context(nn.BatchNorm1d)).status == "passed"
    monkeypatch.setattr(CURRENT, "import_changes", {"grad mode": ("enabled", "disabled")})
    assert inputs.global_state_changed(context(nn.BatchNorm1d)).status == "failed"


def test_axes_are_compared_by_value_not_identity() -> None:
    """A structure rebuilt from its parts (as one decoded from a worker's JSON) holds an equal
    but distinct axes tuple: torch's BatchNorm2d still reduces over the spec's axes."""
    from bnconform.probes import statistics

    ctx = context(nn.BatchNorm2d)
    for value in normalization.structures(ctx):  # measured, then replaced by rebuilt copies
        measured(ctx, statistics.structure, value.rank, value=dataclasses.replace(value, axes=tuple(list(value.axes))))
    assert normalization.reduction_axes(ctx).status == "passed"
    assert normalization.unmeasurable(ctx) == ""


def test_an_eval_output_under_a_spec_whose_eval_uses_batch_statistics_has_training_causes() -> None:
    """Under a spec whose eval normalizes with batch statistics, an eval output that diverges is
    explained by what a training output is (the running statistics take no part in it)."""
    from bnconform.sequences import EVAL_FORWARD, TRAIN_FORWARD, Divergence

    spec = dataclasses.replace(load_spec("pytorch"), eval_uses="batch")
    divergence = Divergence(what="output", during=EVAL_FORWARD, calls=[TRAIN_FORWARD, EVAL_FORWARD])
    causes = sequences.possible_causes(context(nn.BatchNorm1d, spec), divergence)
    assert causes is not None and "eval-uses-batch-stats" not in causes
    assert "train-uses-running-stats" in causes


def test_a_class_with_eval_running_statistics_fails_a_spec_whose_eval_uses_batch_statistics() -> None:
    spec = dataclasses.replace(load_spec("pytorch"), eval_uses="batch")
    verdict = modes.eval_uses_batch_stats(context(nn.BatchNorm1d, spec))
    assert (verdict.status, verdict.observed, verdict.expected) == ("failed", "running statistics", "batch statistics")


class StatisticsChosenPerCall(nn.BatchNorm1d):
    """torch's arithmetic; a subclass decides per call whether the batch statistics are used."""

    def uses_batch(self) -> bool:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                        self.uses_batch(), self.momentum, self.eps)


class RunningStatisticsWhileGradIsOn(StatisticsChosenPerCall):
    """Training with grad enabled normalizes with the running statistics; under no_grad it is correct."""

    def uses_batch(self) -> bool:
        return self.training and not torch.is_grad_enabled()


def test_training_that_uses_other_statistics_only_with_grad_follows_grad() -> None:
    verdict = modes.mode_follows_grad(context(RunningStatisticsWhileGradIsOn))
    assert verdict.status == "failed", verdict
    assert "train mode under no_grad uses batch statistics" in verdict.observed


def test_modes_are_compared_by_value_not_identity() -> None:
    """Observations rebuilt from their parts (as decoded from a worker's JSON) hold equal but
    distinct strings: torch's BatchNorm1d still follows module.training."""
    from bnconform.probes import modes as mode_probes

    ctx = context(nn.BatchNorm1d)
    obs = ctx.probe(mode_probes.modes)
    runs = (obs.train_grad, obs.train_no_grad, obs.eval_grad, obs.eval_no_grad)
    rebuilt = mode_probes.ModeObservation(*(dataclasses.replace(run, uses="".join(list(run.uses))) for run in runs))
    measured(ctx, mode_probes.modes, value=rebuilt)
    assert rebuilt.eval_grad.uses is not obs.eval_grad.uses
    assert modes.mode_follows_grad(ctx).status == "passed"


class ScaleOnlyBatchNorm(nn.BatchNorm2d):
    """A learnable gamma, no beta (bias=None reaches F.batch_norm)."""

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        self.bias = None


@pytest.mark.parametrize("cls", [ScaleOnlyBatchNorm, functools.partial(nn.BatchNorm2d, affine=False)],
                         ids=["weight only", "affine=False"])
def test_affine_values_are_judged_only_with_both_gamma_and_beta(cls: Any) -> None:
    ctx = context(cls)
    for judge in (affine.affine_init, affine.affine_apply):
        verdict = judge(ctx)
        assert (verdict.status, verdict.reason) == ("skipped", "no weight and bias found"), verdict


class BatchStatisticsUnderNoGrad(StatisticsChosenPerCall):
    """Eval under no_grad normalizes with the batch statistics; eval with grad is correct."""

    def uses_batch(self) -> bool:
        return self.training or not torch.is_grad_enabled()


def test_eval_that_uses_batch_statistics_only_under_no_grad_follows_grad() -> None:
    verdict = modes.mode_follows_grad(context(BatchStatisticsUnderNoGrad))
    observed = "eval mode with grad enabled uses running statistics"
    assert (verdict.status, verdict.observed) == ("failed", observed), verdict


def test_conditioning_is_the_largest_magnitude_over_the_spread_within_a_channel_plus_one() -> None:
    x = torch.tensor([[1.0, -3.0, 2.0, 0.0], [10.0, 10.5, 9.5, 10.0]], dtype=torch.float64).T  # (N=4, C=2)
    spreads = x.std(dim=0, correction=0)
    assert output.conditioning(x, 1) == pytest.approx(float(10.5 / spreads[1]) + 1.0, rel=1e-12)
    assert output.conditioning(x.T.contiguous(), 0) == output.conditioning(x, 1)
    assert output.conditioning(torch.full((4, 2), 2.0), 1) == pytest.approx(2.0 / 1e-12 + 1.0)  # no spread: floored


class Float32Inside(nn.BatchNorm1d):
    """Correct, computing in float32 whatever the input's dtype (judged with float32's tolerance)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = (t.float() for t in (self.running_mean, self.running_var, self.weight, self.bias))
        return nn.functional.batch_norm(x.float(), *state, self.training, 0.1, self.eps).to(x.dtype)


def test_float32_rounding_is_allowed_per_channel_when_channels_sit_far_apart_with_small_spreads() -> None:
    """Channel means far apart inflate the whole tensor's spread: a conditioning measured over it
    was ten times too small, and a correct float32 class failed output-mismatch (seen on seed 1)."""
    ctx = context(Float32Inside)
    case = output.Case((4, 5, 3), [4.9, -5.0, 5.0, 3.0, -4.0], [0.1] * 5, [5.0] * 5, [5.0] * 5, 1)
    assert output.compare(ctx, case).error <= 1.0


class NoSingletonWidth(nn.BatchNorm2d):
    """Refuses an input one pixel wide (the probes' sizes never are; generated inputs can be)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == 1:
            raise ValueError("width 1 is not supported")
        return super().forward(x)


def test_a_generated_input_the_class_raises_on_is_reported_as_such_not_as_a_hang() -> None:
    verdict = output.output_mismatch(context(NoSingletonWidth))
    assert verdict.status == "failed", verdict
    assert verdict.message.startswith("Forward raised on a generated input (shape ["), verdict.message
    assert verdict.observed.endswith("ValueError: width 1 is not supported"), verdict.observed


def test_the_output_repro_of_a_channels_last_spec_moves_the_channels_last() -> None:
    from tests.wild.keras_port import KerasBatchNormalization

    case = output.Case((2, 5, 3), [0.0] * 5, [1.0] * 5, [1.0] * 5, [0.0] * 5, 0)
    lines = output.repro(context(KerasBatchNormalization, "keras"), case).splitlines()
    generated = next(i for i, line in enumerate(lines) if line.startswith("x = torch.tensor("))
    assert lines[generated + 1] == "x = x.movedim(1, -1).contiguous()", lines  # the generated x, not the preamble's
    assert "movedim" not in output.repro(context(nn.BatchNorm1d), case)


def test_wrong_values_at_the_base_scale_are_reported_even_where_torch_fails_too() -> None:
    """At std 1 every dtype must work: a failure is the class's, whatever torch's BatchNorm does.
    At a swept scale torch also fails, it is a limit of the format and not reported."""
    from bnconform.probes import dtypes as dtype_probes

    half = (torch.float16, torch.float16)
    for scale, reported in ((dtype_probes.BASE, True), (dtype_probes.SWEEP[1], False)):
        ctx = context(nn.BatchNorm1d)
        outcome = dtype_probes.Outcome(dtype_probes.Case("cpu", *half, scale), errors=["wrong values"], torch_ok=False)
        measured(ctx, dtype_probes.dtype_support, "cpu", value=[outcome])
        verdict = dtypes.dtype_support(ctx)
        assert (verdict.status == "failed") is reported, verdict
        if reported:
            assert verdict.message == "Wrong values in low precision at ordinary activation scales: wrong values"


def test_a_low_precision_forward_that_raises_is_not_called_wrong_values() -> None:
    from bnconform.probes import dtypes as dtype_probes

    ctx = context(nn.BatchNorm1d)
    raised = dtype_probes.Outcome(dtype_probes.Case("cpu", torch.float16, torch.float16),
                                  errors=["cpu float16 module: train-mode forward raised: boom"], raised=True)
    wrong = dtype_probes.Outcome(dtype_probes.Case("cpu", torch.bfloat16, torch.bfloat16), errors=["wrong values"])
    measured(ctx, dtype_probes.dtype_support, "cpu", value=[raised, wrong])
    assert dtypes.dtype_support(ctx).message == ("Low precision raises at ordinary activation scales: cpu float16"
                                                 " module: train-mode forward raised: boom (and 1 more)")
    measured(ctx, dtype_probes.dtype_support, "cpu", value=[wrong, raised])
    assert dtypes.dtype_support(ctx).message.startswith("Wrong values in low precision at ordinary activation scales:")


class NoSingletonWidthAndOffChannel(NoSingletonWidth):
    """Two distinct defects the output search meets: a raise on width 1, an offset in channel 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return torch.cat([y[:, :1] + 0.25, y[:, 1:]], dim=1)


def test_an_output_search_that_meets_two_defects_reports_one() -> None:
    verdict = output.output_mismatch(context(NoSingletonWidthAndOffChannel))
    assert verdict.status == "failed", verdict
    assert verdict.message.startswith(("Forward raised on a generated input", "Training output differs")), verdict


def test_buffers_alone_keeping_their_dtype_are_filed_under_the_registration_defect() -> None:
    running = "cpu float16 module: running_mean stays torch.float32"
    output_dtype = "cpu float16 module: output is torch.float32"
    assert dtypes.dtype_causes([], [], [running]) == {
        "explained_by": ["running-stats-not-buffers", "running-stats-shape", "device-transfer"]}
    assert dtypes.dtype_causes([], [], [output_dtype, running]) == {}
    assert dtypes.dtype_causes(["wrong values"], [], [running]) == {}


def test_a_gradgradcheck_failure_shows_a_gradgradcheck_repro() -> None:
    from bnconform.probes import gradcheck as gradcheck_probes

    ctx = context(nn.BatchNorm1d, profile="thorough")
    for train, mode in ((True, "train"), (False, "eval")):
        measured(ctx, gradcheck_probes.directional, train, value=gradcheck_probes.GradCheck(mode, {}))
    full = gradcheck_probes.FullGradCheck({"train": "", "eval": ""}, {"train": "second derivative wrong", "eval": ""})
    measured(ctx, gradcheck_probes.full_gradcheck, value=full)
    verdict = dtypes.gradcheck(ctx)
    assert verdict.message.startswith("gradgradcheck fails (train: second derivative wrong)"), verdict
    assert "gradgradcheck(" in verdict.repro and "gradcheck(" not in verdict.repro.replace("gradgradcheck(", "")


@pytest.mark.parametrize(("profile", "examples"), [("default", 20), ("thorough", 200)])
def test_the_output_search_tries_the_profiles_number_of_generated_inputs(
    monkeypatch: pytest.MonkeyPatch, profile: str, examples: int
) -> None:
    ctx = context(nn.BatchNorm2d, profile=profile)
    compared = []
    real = output.compare

    def counted(*args: Any) -> Any:
        compared.append(args[1])
        return real(*args)

    monkeypatch.setattr(output, "compare", counted)
    assert output.search(ctx, ctx.behaviour()) == {}
    assert len(compared) == output.EXAMPLES[profile] == examples


def test_generated_inputs_cover_the_documented_domain_and_stay_inside_it() -> None:
    """Channel means and gammas/betas in [-5, 5], spreads in [0.1, 5], spatial sizes 1 to 3, every
    rank and batch offered, a fresh random draw (salt) per case."""
    from hypothesis import given, seed, settings

    seen: list[Any] = []

    @settings(max_examples=300, database=None, deadline=None, derandomize=True)
    @seed(0)
    @given(output.cases((2, 3, 4), 5, [2, 3]))
    def collect(case: Any) -> None:
        seen.append(case)

    collect()
    per_channel = [v for c in seen for v in (*c.means, *c.gamma, *c.beta)]
    spreads = [v for c in seen for v in c.stds]
    assert -5 <= min(per_channel) <= -4.5 and 4.5 <= max(per_channel) <= 5
    assert 0.1 <= min(spreads) <= 0.2 and 4.5 <= max(spreads) <= 5
    assert {len(c.shape) for c in seen} == {2, 3, 4} and {c.shape[0] for c in seen} == {2, 3}
    assert {c.shape[1] for c in seen} == {5} and {s for c in seen for s in c.shape[2:]} == {1, 2, 3}
    assert all(len(c.means) == len(c.stds) == len(c.gamma) == len(c.beta) == 5 for c in seen)
    salts = {c.salt for c in seen}
    assert len(salts) > 20 and 0 <= min(salts) and 2**15 < max(salts) <= 2**16


def test_a_call_that_raised_outside_a_reload_leaves_the_causes_to_the_table() -> None:
    from bnconform.sequences import EVAL_FORWARD, RAISED, RELOAD, RESET, Divergence

    ctx = context(nn.BatchNorm1d)
    for during in (EVAL_FORWARD, RESET, "construction"):
        assert sequences.possible_causes(ctx, Divergence(what=RAISED, during=during, calls=[during])) is None
    reloaded = sequences.possible_causes(ctx, Divergence(what=RAISED, during=RELOAD, calls=[RELOAD]))
    assert reloaded and "state-dict" in reloaded


class TupleForSingletonWidth(nn.BatchNorm2d):
    """Returns a tuple, not a tensor, for an input one pixel wide."""

    def forward(self, x: torch.Tensor) -> Any:
        y = super().forward(x)
        return (y,) if x.shape[-1] == 1 else y


def test_a_generated_input_that_gets_the_wrong_type_back_is_reported_not_taken_for_a_hang() -> None:
    verdict = output.output_mismatch(context(TupleForSingletonWidth))
    assert verdict.status == "failed", verdict
    assert "returned the wrong type" in verdict.observed, verdict.observed


def test_an_output_search_that_fails_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """A run writes its report to stdout (--format json -o -): hypothesis must not print there."""
    verdict = output.output_mismatch(context(NoSingletonWidthAndOffChannel))
    assert verdict.status == "failed", verdict
    assert capsys.readouterr() == ("", "")


def test_a_generated_input_is_described_to_three_decimals() -> None:
    case = output.Case((2, 5), [0.123456] * 5, [1.98765] * 5, [1.0] * 5, [-0.0004] * 5, 0)
    verdict = output.mismatch(context(nn.BatchNorm1d), {"case": case, "error": "ValueError: no"})
    assert "channel means [0.123, 0.123," in verdict.message and "stds [1.988," in verdict.message, verdict.message
    assert "beta [-0.0, -0.0," in verdict.message, verdict.message


def test_an_output_exactly_at_the_allowed_error_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = context(nn.BatchNorm1d)
    at_limit = output.Comparison(1.0, torch.zeros(1), torch.zeros(1))
    monkeypatch.setattr(output, "compare", lambda *_: at_limit)
    assert output.search(ctx, ctx.behaviour()) == {}
    monkeypatch.setattr(output, "compare", lambda *_: dataclasses.replace(at_limit, error=1.0 + 1e-12))
    assert output.search(ctx, ctx.behaviour())["comparison"].error > 1


class BiasOffByTheTolerance(nn.BatchNorm1d):
    """beta starts exactly 1e-9 from zero (float64): within affine-init's tolerance."""

    def __init__(self, num_features: int, **kwargs: Any) -> None:
        super().__init__(num_features, **kwargs)
        self.bias = nn.Parameter(torch.full((num_features,), 1e-9, dtype=torch.float64))


def test_an_initial_value_exactly_at_the_tolerance_is_accepted() -> None:
    assert affine.affine_init(context(BiasOffByTheTolerance)).status == "passed"


class NanForSingletonWidth(nn.BatchNorm2d):
    """Returns NaN for an input one pixel wide (the probes' sizes never are; generated inputs can be)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y * float("nan") if x.shape[-1] == 1 else y


def test_a_non_finite_output_on_a_generated_input_is_a_mismatch() -> None:
    verdict = output.output_mismatch(context(NanForSingletonWidth))
    assert verdict.status == "failed", verdict
    assert verdict.observed.endswith("(inf x the allowed error)"), verdict.observed


@pytest.mark.parametrize(("factor", "status"), [(1.0, "passed"), (0.995, "passed"), (1.005, "failed")])
def test_affine_apply_allows_a_hundred_times_the_exact_tolerance(factor: float, status: str) -> None:
    from bnconform.probes import model, precision

    ctx = context(nn.BatchNorm1d)
    measured(ctx, precision.working_dtype, value=torch.float64)
    error = model.EXACT_TOL[torch.float64] * 100 * factor
    measured(ctx, model.affine, value=model.AffineObservation(error, "", [1.0] * 5, [0.0] * 5))
    assert affine.affine_apply(ctx).status == status


def test_a_mismatch_keeps_the_first_200_values_of_each_output() -> None:
    case = output.Case((2, 5, 30), [0.0] * 5, [1.0] * 5, [1.0] * 5, [0.0] * 5, 0)
    expected = torch.arange(300, dtype=torch.float64)
    failure = {"case": case, "comparison": output.Comparison(3.0, expected, expected + 1)}
    details = output.mismatch(context(nn.BatchNorm1d), failure).details
    assert details["expected_values"] == list(range(200)) and details["observed_values"] == list(range(1, 201))


class Offset(nn.BatchNorm1d):
    OFFSET = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.OFFSET


@pytest.mark.parametrize(("ulps", "within"), [(15.5, True), (16.5, False)])
def test_rounding_is_allowed_sixteen_ulps_of_the_working_dtype_times_the_conditioning(
    monkeypatch: pytest.MonkeyPatch, ulps: float, within: bool
) -> None:
    """With a conditioning so large that the rounding term dominates the spec's atol and rtol."""
    conditioning = 1e14
    monkeypatch.setattr(output, "conditioning", lambda *_: conditioning)
    cls = type("Offset", (Offset,), {"OFFSET": ulps * torch.finfo(torch.float64).eps * conditioning})
    case = output.Case((4, 5), [0.0] * 5, [1.0] * 5, [1.0] * 5, [0.0] * 5, 0)
    assert (output.compare(context(cls), case).error <= 1) is within


class TwoDimensionalOnly(nn.BatchNorm1d):
    """(N, C) only: (N, C, L), of the same kind of data, is refused."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"expected 2D input (got {x.dim()}D input)")
        return super().forward(x)


def test_one_rejected_rank_of_an_accepted_group_is_shown_with_its_own_shape() -> None:
    ctx = context(TwoDimensionalOnly)
    verdict = basics.input_rank_unsupported(ctx)
    assert verdict.status == "failed", verdict
    assert verdict.message.startswith("Accepts ranks [2] but rejects rank 3 of the same kind of data ([2, 3]"), verdict
    assert f"torch.randn({ctx.shape(3)}" in verdict.repro, verdict.repro


def test_dtypes_are_measured_on_cuda_only_where_there_is_a_gpu() -> None:
    ctx = context(nn.BatchNorm1d, devices=("cpu", "cuda"))
    assert dtypes.dtype_devices(ctx) == (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])


def test_an_output_scaled_explanation_is_compared_by_value() -> None:
    from bnconform.probes import model, precision

    ctx = context(nn.BatchNorm1d)
    measured(ctx, precision.working_dtype, value=torch.float64)
    rebuilt = "".join(list(model.OUTPUT_SCALED))  # as decoded from a worker's JSON: equal, not identical
    measured(ctx, model.affine, value=model.AffineObservation(0.5, rebuilt, [1.0] * 5, [0.0] * 5))
    assert affine.affine_apply(ctx).status == "passed"


class CrypticNames(nn.Module):
    """Correct statistics under names no alias table knows: found only by watching a step."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("alpha", torch.zeros(num_features))
        self.register_buffer("omega", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.batch_norm(x, self.alpha, self.omega, self.weight, self.bias, self.training, 0.1, 1e-5)


def test_running_statistics_under_unknown_names_are_found_by_behaviour() -> None:
    from bnconform.probes import basics as basic_probes

    found = context(CrypticNames).probe(basic_probes.found_tensors)
    assert {role: (found.slots[role].name, found.slots[role].found_by) for role in ("running_mean", "running_var")} == {
        "running_mean": ("alpha", "behaviour"), "running_var": ("omega", "behaviour")}


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 1), (2, 3, 3), (2, 3)])
def test_an_output_of_any_other_shape_is_refused(shape: tuple[int, ...]) -> None:
    from bnconform.errors import UserCodeError
    from bnconform.probes import inputs as input_probes

    x = torch.zeros(2, 3, 4)
    with pytest.raises(UserCodeError) as raised:
        input_probes.validated_output("train-mode forward", torch.zeros(shape), x)
    assert raised.value.kind == "shape"
    assert f"returned shape {list(shape)} for input shape [2, 3, 4]" in str(raised.value)
    assert input_probes.validated_output("train-mode forward", x + 1, x).shape == x.shape


def test_an_output_on_another_device_is_refused_before_its_values_are_read() -> None:
    from bnconform.errors import UserCodeError
    from bnconform.probes import inputs as input_probes

    x = torch.zeros(2, 3, 4)
    with pytest.raises(UserCodeError) as raised:
        input_probes.validated_output("eval-mode forward", torch.zeros(2, 3, 4, device="meta"), x)
    assert raised.value.kind == "type"
    assert "returned a tensor on meta for an input on cpu" in str(raised.value)


@pytest.mark.parametrize(
    ("residual", "working"), [(0.99e-3, torch.float32), (1e-3, torch.float64), (1e-11, torch.float64)]
)
def test_float32_sized_rounding_is_a_fit_residual_strictly_between_the_noise_floors(
    monkeypatch: pytest.MonkeyPatch, residual: float, working: torch.dtype
) -> None:
    from bnconform.probes import precision, statistics

    fit = statistics.Fit(torch.ones(5), torch.zeros(5), residual)
    monkeypatch.setattr(statistics, "fit_with_activation", lambda *_: (fit, ""))
    assert precision.working_dtype(context(nn.BatchNorm1d)) == working


def test_a_forward_that_raises_leaves_the_working_dtype_as_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from bnconform.errors import UserCodeError
    from bnconform.probes import precision

    def raising(*_: Any, **__: Any) -> None:
        raise UserCodeError("train-mode forward", "ValueError: no")

    monkeypatch.setattr(precision, "forward", raising)
    assert precision.working_dtype(context(nn.BatchNorm1d)) == torch.float64


@pytest.mark.parametrize(("passes", "handled", "largest"), [
    ([("std 10", True), ("std 100", True), ("std 300", False), ("std 1000", True)],
     "std 10, std 100", "std 100"),
    ([("std 10", False), ("std 100", True)], "only std 1", "std 1"),
    ([("std 10", True), ("mean 1000", True)], "std 10, mean 1000", "mean 1000"),
])
def test_a_scale_report_names_the_scales_passed_before_the_first_failure(
        passes: list[tuple[str, bool]], handled: str, largest: str) -> None:
    """The sweep mixes axes (stds, then a large mean): the sentence lists scales, not "up to" one."""
    assert dtypes.listed(dtypes.handled_prefix(passes)) == handled
    assert dtypes.largest(passes) == largest


@pytest.mark.parametrize(("error", "weights", "causes"), [
    ("ZeroDivisionError: float division by zero", (), {"possible_causes": ["num-batches-tracked"]}),
    ("TypeError: unsupported operand type(s) for -: 'int' and 'NoneType'", (), {"accounted_for": True}),
    ("", (0.0, 0.5, 2 / 3), {"possible_causes": ["momentum-inverted"]}),  # 1/n as the old value's weight
    ("", (1.0, 1.0, 1.0), {"possible_causes": ["num-batches-tracked"]}),  # 1/n with n stuck at 1
    ("", (0.1, 0.1, 0.1), {"possible_causes": ["momentum-ignored"]}),     # the default weight, None unread
    ("", (0.2, 0.2, 0.2), {"accounted_for": True}),                      # None's own path: a root of its own
    ("", (0.1, 0.1005, 0.1), {"possible_causes": ["momentum-ignored"]}),  # within the momentum tolerance
    ("", (0.1, 0.102, 0.1), {"accounted_for": True}),
    ("", (0.0, 0.0, 0.0), {"accounted_for": True}),                      # never moves: not a counter at 1
    ("RuntimeError: division by zero in the update", (), {"possible_causes": ["num-batches-tracked"]}),
    ("", (), {}),
])
def test_momentum_none_names_only_the_causes_its_weights_allow(error: str, weights: tuple[float, ...],
                                                               causes: dict) -> None:
    from bnconform.checks.momentum import none_causes

    assert none_causes(error, weights, default_weight=0.1) == causes


class NoAffineBatchNorm(nn.BatchNorm2d):
    """affine=False whatever it is asked: no Parameter at all."""

    def __init__(self, num_features: int, **kwargs: Any) -> None:
        super().__init__(num_features, **{**kwargs, "affine": False})


class PackedAffineBatchNorm(nn.BatchNorm2d):
    """gamma and beta packed in one (2, C) Parameter named `scale_shift`."""

    def __init__(self, num_features: int, **kwargs: Any) -> None:
        super().__init__(num_features, **{**kwargs, "affine": False})
        self.scale_shift = nn.Parameter(torch.stack([torch.ones(num_features), torch.zeros(num_features)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1, -1] + [1] * (x.dim() - 2)
        return super().forward(x) * self.scale_shift[0].view(shape) + self.scale_shift[1].view(shape)


@pytest.mark.parametrize(("cls", "message", "observed"), [
    (NoAffineBatchNorm, "No learnable weight (gamma) or bias (beta) found", "none found"),
    (PackedAffineBatchNorm, "No weight (gamma) or bias (beta) found among the Parameters scale_shift (2, 5)",
     "Parameters scale_shift (2, 5); none is a weight or bias"),
])
def test_affine_params_names_the_parameters_it_could_not_map(cls: type, message: str, observed: str) -> None:
    verdict = affine.affine_params(context(cls))
    assert (verdict.status, verdict.message, verdict.observed) == ("failed", message, observed)


@pytest.mark.parametrize(("output_finite", "running_finite", "observed", "prints_statistics"), [
    (False, True, "returned NaN/inf", False),
    (True, False, "wrote NaN/inf into the running statistics", True),
    (False, False, "returned NaN/inf and wrote NaN/inf into the running statistics", True),
])
def test_batch_size_one_says_which_went_non_finite_and_shows_it(output_finite: bool, running_finite: bool,
                                                                observed: str, prints_statistics: bool) -> None:
    from bnconform.probes import modes as mode_probes

    ctx = context(nn.BatchNorm2d)
    measured(ctx, mode_probes.batch_of_one,
             value=mode_probes.BatchOfOne("", output_finite, running_finite, (1, 5, 1, 1)))
    verdict = basics.batch_size_one(ctx)
    assert (verdict.status, verdict.observed, verdict.severity) == ("failed", observed, Severity.ERROR)
    assert ("print(bn.running_mean, bn.running_var)" in verdict.repro) is prints_statistics


def test_buffers_requiring_grad_are_shown_from_the_first_one_named() -> None:
    verdict = running_checks.requiring_grad(context(nn.BatchNorm2d), ["running_mean", "running_var"])
    assert verdict.message.startswith("running_mean, running_var require grad")
    assert "print(bn.running_mean.requires_grad)  # should be False" in verdict.repro


@pytest.mark.parametrize(("observed", "expected", "noted"), [
    (0.9, 0.1, True),    # a Keras momentum in PyTorch's formula
    (0.9, 0.7, False),   # a spec whose own default gives the new batch most of the weight
    (0.3, 0.1, False),
])
def test_the_old_weight_note_needs_the_spec_to_give_the_old_statistics_most_of_the_weight(
        observed: float, expected: float, noted: bool) -> None:
    from bnconform.checks.momentum import old_weight_note

    assert bool(old_weight_note(observed, expected)) is noted


@pytest.mark.parametrize(("placement", "used", "message", "comment"), [
    ("inside-sqrt", 0.1, "the module adds 0.1 to the running variance in eval mode", "# 1.225 where eval adds eps=0.5"),
    ("outside-sqrt", 0.1, "the module adds 0.1 to the running variance in eval mode", "# 1.5 where eval adds eps=0.5"),
    ("inside-sqrt", 3e-17, "the module adds 0 to the running variance in eval mode", "# 1.225 where eval adds eps=0.5"),
    ("inside-sqrt", -0.5, "the module adds -0.5 to the running variance in eval mode",
     "# 1.225 where eval adds eps=0.5"),
])
def test_an_eval_mode_eps_other_than_the_one_given_is_eps_ignored(placement: str, used: float, message: str,
                                                                    comment: str) -> None:
    from bnconform.probes import statistics as statistics_probes

    ctx = context(nn.BatchNorm2d)
    measured(ctx, statistics_probes.eval_eps, placement, value=used)
    obs = statistics_probes.EpsObservation(placement, 0.5, 1e-5, 0.5, placement)
    verdict = normalization.eval_eps_verdict(ctx, obs)
    assert verdict.status == "failed" and message in verdict.message
    assert verdict.repro.endswith(comment)
    # Only an eval eps of 0 or less can divide by 0: that alone is said, and is an error
    divides = used <= 1e-12
    assert verdict.message.endswith(": a channel whose running variance reaches 0 divides by 0 in eval") is divides
    assert verdict.severity == (Severity.ERROR if divides else None)


def test_an_eval_mode_eps_within_0_02_of_the_one_given_passes() -> None:
    from bnconform.probes import statistics as statistics_probes

    ctx = context(nn.BatchNorm2d)
    measured(ctx, statistics_probes.eval_eps, "inside-sqrt", value=0.49)
    obs = statistics_probes.EpsObservation("inside-sqrt", 0.5, 1e-5, 0.5, "inside-sqrt")
    assert normalization.eval_eps_verdict(ctx, obs).status == "passed"


def test_an_eval_mode_eps_is_not_judged_under_a_spec_that_evaluates_with_batch_statistics() -> None:
    from bnconform.probes import statistics as statistics_probes

    ctx = context(nn.BatchNorm2d, dataclasses.replace(load_spec("pytorch"), eval_uses="batch"))
    measured(ctx, statistics_probes.eval_eps, "inside-sqrt", value=0.1)  # would be eps-ignored if judged
    obs = statistics_probes.EpsObservation("inside-sqrt", 0.5, 1e-5, 0.5, "inside-sqrt")
    assert normalization.eval_eps_verdict(ctx, obs).status == "passed"


def test_an_eval_mode_eps_is_judged_under_a_spec_built_in_python() -> None:
    from bnconform.probes import statistics as statistics_probes

    # Spec fields set from Python literals (the typed API), not read from a spec file
    ctx = context(nn.BatchNorm2d, dataclasses.replace(load_spec("pytorch"), eval_uses="running"))
    measured(ctx, statistics_probes.eval_eps, "inside-sqrt", value=0.1)
    obs = statistics_probes.EpsObservation("inside-sqrt", 0.5, 1e-5, 0.5, "inside-sqrt")
    assert normalization.eval_eps_verdict(ctx, obs).status == "failed"


def test_a_float32_variance_off_by_exactly_five_percent_is_still_stable() -> None:
    from bnconform.probes import statistics as statistics_probes

    ctx = context(nn.BatchNorm2d)
    estimator = normalization.primary_structure(ctx).estimator
    measured(ctx, statistics_probes.stability, estimator, *normalization.own_eps(ctx),
             value=statistics_probes.Stability(relative_error=0.05, mean_offset=3000.0))
    assert normalization.unstable_variance(ctx).status == "passed"


def test_a_denominator_that_ignores_the_variance_shows_the_first_five_channels() -> None:
    from bnconform.probes import statistics as statistics_probes

    ctx = context(nn.BatchNorm2d)
    measured(ctx, statistics_probes.denominator_variance_share, ctx.primary_rank, value=0.0)
    s = statistics_probes.Structure(ctx.primary_rank, (0, 2, 3), "other", "batch", 1.0, 60,
                                    scale=(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0))
    verdict = normalization.variance_ignored(ctx, s)
    assert verdict.observed.startswith("denominators [1, 2, 3, 4, 5] in channels")


@pytest.mark.parametrize("spec_name", ["pytorch", "keras"])
def test_the_dtype_repro_reference_is_the_spec_s_training_output_on_its_channel_axis(spec_name: str) -> None:
    from types import SimpleNamespace

    spec = load_spec(spec_name)
    x = torch.randn(4, 3, 5, 6, generator=torch.Generator().manual_seed(0)).double()
    channels_last = spec.channel_axis == -1
    axes = (0, 1, 2) if channels_last else (0, 2, 3)
    shape = (1, 1, 1, 6) if channels_last else (1, 3, 1, 1)
    mean, var = x.mean(dim=axes).reshape(shape), x.var(dim=axes, unbiased=False).reshape(shape)
    expression = dtypes.reference_output(SimpleNamespace(spec=spec))
    reference = eval(expression, {"torch": torch, "x": x})  # noqa: S307 - bnconform's own repro text
    torch.testing.assert_close(reference, (x - mean) / torch.sqrt(var + spec.eps))


def momentum_seen(default: float, explicit: float | None) -> Any:
    from bnconform.probes import running as running_probes

    def update(weight: float) -> Any:
        return running_probes.Update(weight, 0.0, 1.0, 60, var_weight=weight, var_tracks="unbiased")

    return running_probes.MomentumObservation(update(default), None if explicit is None else update(explicit),
                                              0.1, running_probes.EXPLICIT_MOMENTUM)


@pytest.mark.parametrize(("default", "explicit", "status"), [
    (0.1, 1 - 0.3, "passed"),  # the formula flips every value: the default value is the spec's
    (0.9, 0.3, "skipped"),  # a Keras-style default value in the spec's formula
    (0.9, None, "skipped"),  # no momentum argument: the default value cannot be told from the formula
    (0.1, 0.3, "passed"),
])
def test_a_default_weight_of_one_minus_the_spec_s_passes_only_when_the_formula_flips_it(
        default: float, explicit: float | None, status: str) -> None:
    from bnconform.checks import momentum as momentum_checks
    from bnconform.probes import running as running_probes

    assert running_probes.EXPLICIT_MOMENTUM == 0.3
    ctx = context(nn.BatchNorm2d)
    measured(ctx, running_probes.momentum, value=momentum_seen(default, explicit))
    verdict = momentum_checks.momentum_default(ctx)
    assert verdict.status == status
    if status == "skipped":
        assert verdict.reason.startswith("the default gives the new batch weight 0.9, 1 - the spec's 0.1")


class EveryThirdStepBatchNorm(nn.BatchNorm1d):
    """Blends the batch into its running statistics on every third training step only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        self.num_batches_tracked.add_(1)
        update = int(self.num_batches_tracked) % 3 == 0
        running = (self.running_mean, self.running_var) if update else (None, None)
        return nn.functional.batch_norm(x, *running, self.weight, self.bias, True, self.momentum, self.eps)


def test_a_class_moving_on_step_three_gets_a_repro_of_three_steps(capsys: pytest.CaptureFixture[str]) -> None:
    verdict = running_checks.running_stats_not_updated(context(EveryThirdStepBatchNorm))
    assert verdict.message.endswith("they first moved on step 3 of the same batch"), verdict.message
    exec(compile(verdict.repro, "<repro>", "exec"), {})  # noqa: S102 - our own snippet
    assert capsys.readouterr().out.splitlines() == [
        "step 1 moved: False", "step 2 moved: False", "step 3 moved: True"]


def test_a_first_move_the_momentum_probe_did_not_see_is_not_reported_as_a_skipped_step() -> None:
    from bnconform.probes import running

    ctx = context(wild_stats.StaleStatsBatchNorm)
    measured(ctx, running.first_moving_step, value=1)  # one element moved a little, no weight above MOVED
    verdict = running_checks.running_stats_not_updated(ctx)
    assert (verdict.status, verdict.message) == ("failed", "The running mean did not move after a training step")


@pytest.mark.parametrize("spec_name", ["keras", "tf-fused"])
def test_an_estimator_read_from_a_spec_file_is_compared_by_value(spec_name: str) -> None:
    # The spec file's string is not the probe's literal object: an identity test would fail
    # a class that stores the very estimator the spec names.
    spec = load_spec(spec_name)
    estimator = "biased" if spec.running_var_estimator == "biased" else "unbiased"

    class SpecEstimatorBatchNorm(nn.BatchNorm1d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not self.training:
                return super().forward(x)
            axes = tuple(range(x.dim() - 1))  # channels last, as both specs lay them out
            mean, var = x.mean(axes), x.var(axes, unbiased=False)
            with torch.no_grad():
                n = x.numel() // x.shape[-1]
                stored = var * n / (n - 1) if estimator == "unbiased" else var
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(stored, self.momentum)
            return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias

    verdict = running_checks.running_var_estimator(context(SpecEstimatorBatchNorm, spec))
    assert verdict.status == "passed", verdict


@pytest.mark.parametrize("target", ["PerSampleBatchNorm", "PerPositionBatchNorm"])
def test_the_reduction_axes_repro_shows_the_output_differ_from_the_spec_s(
        target: str, capsys: pytest.CaptureFixture[str]) -> None:
    # An InstanceNorm-like output has per-channel mean 0 too: only the spec's output tells them apart
    verdict = normalization.reduction_axes(context(getattr(wild_stats, target)))
    assert verdict.status == "failed", verdict
    exec(compile(verdict.repro, "<repro>", "exec"), {})  # noqa: S102 - our own snippet
    label, value = capsys.readouterr().out.rsplit(":", 1)
    assert label == "largest difference from the reference (about 0 when they match)"
    assert float(value) > 0.1


class NormalizesInPlace(nn.BatchNorm1d):
    """Writes its (correct) output into its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.copy_(super().forward(x.detach().clone()))


def test_an_input_written_by_many_calls_names_six_and_counts_the_rest() -> None:
    from bnconform.api import run_check

    result = run_check(f"{__name__}:NormalizesInPlace")
    finding = next(f for f in result["findings"] if f["code"] == "input-modified")
    calls = list(finding["details"]["calls"])
    assert len(calls) > 6
    assert finding["observed"] == f"input changed by: {'; '.join(calls[:6])} (and {len(calls) - 6} more calls)"


@pytest.mark.parametrize("count", [1, 5, 6])
def test_six_calls_or_fewer_are_all_named_and_none_counted(count: int) -> None:
    from bnconform.probes import inputs as input_probes

    ctx = context(nn.BatchNorm1d)
    calls = tuple((f"call {i}", "all values changed") for i in range(count))
    measured(ctx, input_probes.modified_inputs, value=input_probes.InputWrites(calls))
    verdict = inputs.input_modified(ctx)
    assert verdict.observed == "input changed by: " + "; ".join(call for call, _ in calls)


def test_a_seventh_call_is_counted_not_named() -> None:
    from bnconform.probes import inputs as input_probes

    ctx = context(nn.BatchNorm1d)
    calls = tuple((f"call {i}", "all values changed") for i in range(7))
    measured(ctx, input_probes.modified_inputs, value=input_probes.InputWrites(calls))
    assert inputs.input_modified(ctx).observed.endswith("call 5 (and 1 more calls)")


@pytest.mark.parametrize(("axes", "rank", "channel_axis", "described"), [
    ((1, 2, 3), 4, 1, "over (C, H, W): per sample (LayerNorm-like)"),
    ((2, 3), 4, 1, "over (H, W): per sample and channel (InstanceNorm-like)"),
    ((1, 2), 4, -1, "over (H, W): per sample and channel (InstanceNorm-like)"),
    ((1,), 2, 1, "over (C): per sample (LayerNorm-like)"),
    ((3,), 4, 1, "over (W): separate statistics per (N, C, H) position"),
    ((1, 3), 4, 1, "over (C, W): separate statistics per (N, H) position"),
    ((0, 2, 3), 4, 1, "over (N, H, W): per channel"),
])
def test_reduction_axes_are_described_by_what_keeps_its_own_statistics(
        axes: tuple[int, ...], rank: int, channel_axis: int, described: str) -> None:
    assert normalization.describe_axes(axes, rank, channel_axis) == described
