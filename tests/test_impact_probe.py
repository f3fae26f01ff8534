"""What one deviation costs (bnconform.probes.impact), judged from given measurements: which
deviation each finding models, when none is claimed, and the replay's numbers (issue 13)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from torch import nn

from bnconform.context import per_channel
from bnconform.errors import UserCodeError
from bnconform.probes import impact, running, statistics
from bnconform.probes.running import MomentumObservation, Update
from bnconform.probes.statistics import EpsObservation, Structure
from bnconform.reference import eval_forward
from tests._contexts import context, measured, probe_failed


@pytest.fixture
def ctx():
    return context(nn.BatchNorm2d)


def update(new_weight: float, var_weight: float = float("nan"), var_tracks: str = "unbiased") -> Update:
    return Update(new_weight, 0.0, 1.0, 32, var_weight=var_weight, var_tracks=var_tracks)


def momentum_measured(ctx, default: Update) -> None:
    measured(ctx, running.momentum, value=MomentumObservation(default, None, 0.1, 0.25))


@pytest.mark.parametrize(("var_weight", "modelled"), [
    (float("nan"), True),  # running_var's weight unsolved: the mean's weight stands for both
    (0.9, True),
    (0.9 + 0.000999, True),
    (0.9 - 0.000999, True),
    (0.9 + 0.0011, False),
    (0.9 - 0.0011, False),
])
def test_a_momentum_deviation_needs_one_weight_for_both_statistics(ctx, var_weight: float, modelled: bool) -> None:
    momentum_measured(ctx, update(0.9, var_weight))
    deviation = impact.momentum_weight(ctx)
    if not modelled:
        assert deviation is None
        return
    assert deviation == impact.Deviation(ctx.behaviour().but(new_weight=0.9), "eval")


def test_a_momentum_deviation_needs_a_solved_weight(ctx) -> None:
    momentum_measured(ctx, update(float("nan"), 0.9))
    assert impact.momentum_weight(ctx) is None


@pytest.mark.parametrize(("tracks", "modelled"), [("biased", True), ("unbiased", True), ("std", False),
                                                  ("other", False)])
def test_a_running_estimator_deviation_models_only_a_variance_estimator(ctx, tracks: str, modelled: bool) -> None:
    momentum_measured(ctx, update(0.1, var_tracks=tracks))
    deviation = impact.running_estimator(ctx)
    expected = impact.Deviation(ctx.behaviour().but(running_var_estimator=tracks), "eval") if modelled else None
    assert deviation == expected


def test_weights_exactly_1e_3_apart_are_still_one_weight(ctx) -> None:
    momentum_measured(ctx, update(0.0, var_weight=0.001))  # |0.001 - 0.0| == 1e-3 exactly in floats
    assert impact.momentum_weight(ctx) == impact.Deviation(ctx.behaviour().but(new_weight=0.0), "eval")


def structure_measured(ctx, **changes) -> None:
    rank = ctx.primary_rank
    spec_axes = tuple(list(ctx.behaviour().reduction_axes[rank]))  # equal to the spec's, not the same object
    value = Structure(rank, spec_axes, "biased", "batch", 1.0, 32)
    measured(ctx, statistics.structure, rank, value=dataclasses.replace(value, **changes))


def test_a_structure_like_the_spec_s_has_no_deviation(ctx) -> None:
    structure_measured(ctx)
    assert impact.structure_change(ctx) is None


def test_other_axes_come_before_every_other_structural_deviation(ctx) -> None:
    rank = ctx.primary_rank
    structure_measured(ctx, axes=(0,), source="running", estimator="unbiased")
    behaviour = ctx.behaviour()
    expected = behaviour.but(reduction_axes={**behaviour.reduction_axes, rank: (0,)})
    assert impact.structure_change(ctx) == impact.Deviation(expected, "train")


def test_axes_that_could_not_be_solved_are_not_a_deviation(ctx) -> None:
    structure_measured(ctx, axes=None)
    assert impact.structure_change(ctx) is None


def test_normalizing_with_running_statistics_comes_before_the_estimator(ctx) -> None:
    structure_measured(ctx, source="running", estimator="unbiased")
    assert impact.structure_change(ctx) == impact.Deviation(ctx.behaviour().but(train_uses="running"), "train")


@pytest.mark.parametrize(("estimator", "modelled"), [("unbiased", True), ("other", False), ("n/a", False)])
def test_only_a_known_other_estimator_is_a_deviation(ctx, estimator: str, modelled: bool) -> None:
    structure_measured(ctx, estimator=estimator)
    expected = impact.Deviation(ctx.behaviour().but(norm_variance=estimator), "train") if modelled else None
    assert impact.structure_change(ctx) == expected


def test_a_biased_estimator_deviates_from_a_spec_that_normalizes_with_the_unbiased_one(ctx, monkeypatch) -> None:
    unbiased = ctx.behaviour().but(norm_variance="unbiased")
    monkeypatch.setattr(ctx, "behaviour", lambda: unbiased)
    structure_measured(ctx, estimator="biased")
    assert impact.structure_change(ctx) == impact.Deviation(unbiased.but(norm_variance="biased"), "train")


def eps_measured(ctx, default_value: float, default_placement: str) -> None:
    observation = EpsObservation("inside-sqrt", 0.5, default_value, 0.5, default_placement)
    measured(ctx, statistics.eps_behaviour, ctx.behaviour().norm_variance, value=observation)


@pytest.mark.parametrize(("value", "placement", "eps", "expected_placement"), [
    (1e-3, "inside-sqrt", 1e-3, "inside-sqrt"),
    (1e-3, "outside-sqrt", 1e-3, "outside-sqrt"),
    (1e-3, "ignored", 1e-3, "inside-sqrt"),  # no modelled placement: the spec's
    (-2e-4, "inside-sqrt", 0.0, "inside-sqrt"),  # a negative fit is no eps at all
    (0.0, "inside-sqrt", 0.0, "inside-sqrt"),
])
def test_an_eps_deviation_uses_the_measured_value_and_a_modelled_placement(
        ctx, value: float, placement: str, eps: float, expected_placement: str) -> None:
    eps_measured(ctx, value, placement)
    expected = ctx.behaviour().but(eps=eps, eps_placement=expected_placement)
    assert impact.eps_change(ctx) == impact.Deviation(expected, "train")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_an_eps_that_was_not_measured_is_no_deviation(ctx, value: float) -> None:
    eps_measured(ctx, value, "inside-sqrt")
    assert impact.eps_change(ctx) is None


def test_each_finding_with_a_modelled_cost_has_its_deviation() -> None:
    assert impact.DEVIATIONS == {
        "momentum-inverted": impact.momentum_weight,
        "momentum-default": impact.momentum_weight,
        "running-var-estimator": impact.running_estimator,
        "reduction-axes": impact.structure_change,
        "train-uses-running-stats": impact.structure_change,
        "norm-variance-estimator": impact.structure_change,
        "eps-default": impact.eps_change,
        "eps-placement": impact.eps_change,
    }


def test_no_impact_is_claimed_without_a_model_a_deviation_or_a_measurement(ctx) -> None:
    assert impact.impact(ctx, "affine-apply") is None
    structure_measured(ctx)
    assert impact.impact(ctx, "reduction-axes") is None
    probe_failed(ctx, running.momentum, error=UserCodeError("train-mode forward", "boom"))
    assert impact.impact(ctx, "momentum-inverted") is None


def test_the_spec_s_own_behaviour_costs_nothing(ctx) -> None:
    for where in ("train", "eval"):
        assert impact.replay(ctx, impact.Deviation(ctx.behaviour(), where)) == 0.0


def test_an_eval_deviation_is_measured_after_the_training_steps(ctx) -> None:
    """momentum 0.9 instead of 0.1 changes no training output but every eval output."""
    momentum = impact.Deviation(ctx.behaviour().but(new_weight=0.9), "eval")
    assert impact.replay(ctx, dataclasses.replace(momentum, where="train")) == 0.0
    cost = impact.replay(ctx, momentum)
    assert 0.05 < cost < math.inf


def test_the_replay_s_inputs_are_fixed(ctx) -> None:
    """The percentages in reports come from these inputs (means, spreads, salts, steps): pinned."""
    momentum = impact.Deviation(ctx.behaviour().but(new_weight=0.9), "eval")
    eps = impact.Deviation(ctx.behaviour().but(eps=0.5), "train")
    assert impact.replay(ctx, momentum) == pytest.approx(1.20042089, rel=1e-6)
    assert impact.replay(ctx, eps) == pytest.approx(0.42263818, rel=1e-6)


def test_per_sample_axes_are_replayed_without_a_running_update(ctx) -> None:
    """Per-sample statistics have no per-channel running update: a training deviation tracks none."""
    behaviour = ctx.behaviour()
    per_sample = behaviour.but(reduction_axes={**behaviour.reduction_axes, 4: (2, 3)})
    assert 0.01 < impact.replay(ctx, impact.Deviation(per_sample, "train")) < math.inf


def test_a_training_deviation_is_the_largest_training_output_error(ctx) -> None:
    eps = impact.Deviation(ctx.behaviour().but(eps=0.5), "train")
    assert 0.01 < impact.replay(ctx, eps) < 1.0
    assert impact.replay(ctx, dataclasses.replace(eps, where="eval")) > 0.0


def test_the_eval_replay_input_spreads_every_channel(ctx, monkeypatch) -> None:
    """A constant channel would hide an eval deviation that scales the outputs in that channel."""
    seen = []

    def recording_eval_forward(behaviour, x, state):
        seen.append(x)
        return eval_forward(behaviour, x, state)

    monkeypatch.setattr(impact, "eval_forward", recording_eval_forward)
    impact.replay(ctx, impact.Deviation(ctx.behaviour().but(new_weight=0.9), "eval"))
    axes = [a for a in range(seen[0].dim()) if a != 1]
    for x in seen:
        means = x.mean(dim=axes).tolist()
        stds = x.std(dim=axes, unbiased=False).tolist()
        assert means == pytest.approx(per_channel([2.0, -1.0, 1.0], ctx.channels), abs=1e-9)
        assert stds == pytest.approx([1.0] * ctx.channels, abs=1e-9)
