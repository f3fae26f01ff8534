"""The model probes (bnconform.probes.model): which affine formula fits, the fused-ReLU path,
gradient references, and state_dict comparison by torch's own loading rules (issue 13)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnconform.errors import UserCodeError
from bnconform.probes import model, precision, statistics
from bnconform.probes.common import BETA, GAMMA, forward, per_channel
from bnconform.reference import channel_view, train_forward
from tests._contexts import context, measured, probe_failed
from tests.wild.fused import BatchNormAct2d


@pytest.fixture
def ctx():
    return context(nn.BatchNorm2d)


def explained(ctx, formula) -> str:
    """explain_affine's verdict on an output made by `formula(x_hat, gamma, beta)`."""
    x = ctx.input_with_stats(ctx.primary_rank, [1.0, -2.0, 0.5], [1.0, 2.0, 0.5], salt=90)
    x_hat, _ = train_forward(ctx.behaviour(), x.double().cpu(), None)
    g = channel_view(per_channel(GAMMA, ctx.channels), x.dim(), 1)
    b = channel_view(per_channel(BETA, ctx.channels), x.dim(), 1)
    return model.explain_affine(ctx, x, formula(x_hat, g, b), g, b)


@pytest.mark.parametrize("name, formula", [
    ("", lambda x, g, b: g * x + b),
    ("gamma and beta are not applied", lambda x, g, b: x),
    ("gamma and beta are swapped (beta * x_hat + gamma)", lambda x, g, b: b * x + g),
    ("the output is multiplied by beta (x_hat * gamma * beta)", lambda x, g, b: x * g * b),
    ("beta is added before scaling ((x_hat + beta) * gamma)", lambda x, g, b: (x + b) * g),
    ("only gamma is applied", lambda x, g, b: g * x),
    ("only beta is applied", lambda x, g, b: x + b),
    (model.OUTPUT_SCALED, lambda x, g, b: 3.0 * (g * x + b)),
], ids=["right", "none", "swapped", "times-beta", "beta-first", "only-gamma", "only-beta", "scaled"])
def test_each_affine_hypothesis_is_recognised_from_its_own_output(ctx, name: str, formula) -> None:
    assert explained(ctx, formula) == name


class BiasAfterReLU(BatchNormAct2d):
    """A fused layer that adds beta after the activation: relu(gamma * x_hat) + beta."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.batch_norm(x, self.running_mean, self.running_var, self.weight, None, self.training,
                         self.momentum, self.eps)
        return F.relu(y) + self.bias.view(1, -1, 1, 1)


def test_a_right_fused_relu_layer_has_no_affine_explanation() -> None:
    observed = model.affine(context(BatchNormAct2d))
    assert observed.error <= 1e-6 and observed.explanation == ""


def test_a_fused_relu_layer_adding_beta_after_the_activation_is_explained() -> None:
    observed = model.affine(context(BiasAfterReLU))
    assert observed.error > 1e-2
    assert observed.explanation == "the affine transform before the fused activation is not gamma * x + beta"


def test_a_structure_probe_failing_in_user_code_means_no_fused_activation() -> None:
    ctx = context(BatchNormAct2d)
    assert model.fused_relu(ctx) is True
    ctx = context(BatchNormAct2d)
    probe_failed(ctx, statistics.structure, ctx.primary_rank, error=UserCodeError("forward", "boom"))
    assert model.fused_relu(ctx) is False


class NoAffine(nn.BatchNorm2d):
    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, affine=False)


def test_without_affine_parameters_gradients_are_judged_against_the_identity_affine() -> None:
    observed = model.gradients(context(NoAffine))
    assert set(observed.errors) == {"input"} and observed.errors["input"] <= observed.tolerance


@pytest.mark.parametrize("values", [2, 6])
def test_a_gradient_of_another_size_is_missing(values: int) -> None:
    assert model.grad_error(torch.zeros(values), torch.ones(3)) == float("inf")
    assert model.grad_error(torch.ones(1, 3), torch.ones(3)) == 0.0


def loaded_output(ctx, relative_change: float) -> str:
    """compare_loaded on a state_dict that loads exactly, against an output off by `relative_change`."""
    module = ctx.build()
    x = ctx.input_with_stats(ctx.primary_rank, [0.0, 1.0, -1.0], [1.0, 1.0, 1.0], salt=110)
    y = forward(ctx, module, x, train=False)
    return model.compare_loaded(ctx, ctx.build(), module.state_dict(), x, y * (1 + relative_change))


def test_a_float64_class_must_reload_to_1e_9(ctx) -> None:
    measured(ctx, precision.working_dtype, value=torch.float64)
    assert loaded_output(ctx, 0.0) == ""
    assert loaded_output(ctx, 1e-7).startswith("eval output after loading differs (relative error 1e-07")


def test_a_float32_class_may_reload_within_float32_rounding_only(ctx) -> None:
    measured(ctx, precision.working_dtype, value=torch.float32)
    assert loaded_output(ctx, 1e-6) == ""
    assert loaded_output(ctx, 1e-3).startswith("eval output after loading differs (relative error 0.001")


def test_key_difference_of_a_module_that_cannot_be_built_is_empty() -> None:
    def unbuildable() -> nn.Module:
        raise RuntimeError("no")

    assert model.key_difference(unbuildable, nn.BatchNorm2d(3).state_dict()) == model.KeyDifference()


def test_a_checkpoint_s_format_version_decides_whether_num_batches_tracked_is_missing() -> None:
    """torch fills in num_batches_tracked only for old-format checkpoints (version < 2)."""
    saved = nn.BatchNorm2d(3).state_dict()
    del saved["num_batches_tracked"]
    current = model.key_difference(lambda: nn.BatchNorm2d(3), saved)
    assert current.missing == ("num_batches_tracked",)
    old = OrderedDict(saved)  # no _metadata: a checkpoint from before the version was recorded
    assert model.key_difference(lambda: nn.BatchNorm2d(3), old) == model.KeyDifference()


@pytest.mark.parametrize("value, expected, loads", [
    ((3,), (3,), True),
    ((1,), (), True),  # torch loads a 1-d value into a 0-d tensor
    ((1, 1), (), False),
    ((), (1,), False),
    ((2,), (3,), False),
    ((3,), (1,), False),
])
def test_shapes_load_by_torch_s_rule(value: tuple[int, ...], expected: tuple[int, ...], loads: bool) -> None:
    assert model.loads_as_shaped(torch.zeros(value), torch.zeros(expected)) is loads


def test_same_tensors_needs_the_same_keys_and_values() -> None:
    t = torch.arange(3.0)
    assert model.same_tensors({"a": t}, {"a": t.clone()})
    assert not model.same_tensors({"a": t}, {"a": t, "b": t})
    assert not model.same_tensors({"a": t, "b": t}, {"a": t})
    assert not model.same_tensors({"a": t}, {"a": t + 1})


def test_first_line_of_an_error() -> None:
    assert model.first_line(RuntimeError("Error(s) in loading state_dict:\n\tsize mismatch")) == \
        "Error(s) in loading state_dict:"
    assert model.first_line(RuntimeError()) == "RuntimeError"


def test_gradients_are_allowed_the_working_dtype_s_error() -> None:
    """1e-6 for a float64 class, 1e-3 for one that computes in float32 (as torch.nn.BatchNorm does)."""
    for working, tolerance in ((torch.float64, 1e-6), (torch.float32, 1e-3)):
        ctx = context(nn.BatchNorm2d)
        measured(ctx, precision.working_dtype, value=working)
        assert model.gradients(ctx).tolerance == tolerance


def test_a_channels_last_spec_is_not_compared_with_torch_s_state_dict() -> None:
    """torch.nn.BatchNorm keeps channels at axis 1: interop with it is only asked of such specs,
    even when a channels-last spec file asks for it."""
    import dataclasses

    from bnconform.spec import load_spec
    from tests.wild.keras_port import KerasBatchNormalization

    spec = dataclasses.replace(load_spec("keras"), state_dict_interop="torch.nn.BatchNorm")
    observed = model.state_dict(context(KerasBatchNormalization, spec))
    assert (observed.round_trip, observed.interop) == ("", "n/a")


@pytest.mark.parametrize("formula", [
    lambda x, g, b: g * x - b,  # beta subtracted: "only gamma is applied" is nearest, and false
    lambda x, g, b: g * g * x + b,  # gamma applied twice: nearest is "the whole output is scaled"
    lambda x, g, b: x / g + b,  # divided by gamma: nearest is "swapped"
    lambda x, g, b: x - g * b,
], ids=["beta-subtracted", "gamma-twice", "divided-by-gamma", "minus-gamma-beta"])
def test_an_affine_mistake_no_hypothesis_fits_is_not_given_the_nearest_cause(ctx, formula) -> None:
    assert explained(ctx, formula) == model.UNEXPLAINED


@pytest.mark.parametrize("name, formula", [
    ("gamma and beta are swapped (beta * x_hat + gamma)", lambda x, g, b: b * x + g),
    ("the output is multiplied by beta (x_hat * gamma * beta)", lambda x, g, b: x * g * b),
    ("only gamma is applied", lambda x, g, b: g * x),
])
def test_a_hypothesis_is_still_named_when_the_class_s_variance_estimator_differs(ctx, name: str, formula) -> None:
    """Unbiased normalization over 4 values per channel scales x_hat by sqrt(3/4): 13% off."""
    assert explained(ctx, lambda x, g, b: formula(x * (3 / 4) ** 0.5, g, b)) == name


def affine_case(gamma: float, beta: float) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ctx, x, the spec's x_hat, gamma, beta): one gamma and one beta in every channel."""
    ctx = context(nn.BatchNorm2d)
    x = ctx.input_with_stats(ctx.primary_rank, [0.5, -1.0, 2.0], [1.0, 2.0, 0.5], salt=7).double()
    x_hat, _ = train_forward(ctx.behaviour(), x.cpu(), None)
    view = [1, -1] + [1] * (x.dim() - 2)
    full = [torch.full((ctx.channels,), v, dtype=torch.float64).view(view) for v in (gamma, beta)]
    return ctx, x, x_hat, full[0], full[1]


def test_a_nearest_hypothesis_that_fits_only_within_24_percent_is_not_named_however_far_the_rest() -> None:
    """The fit limit (20%) holds on its own: x_hat plus noise is 24% from "not applied" and far
    from every other formula (gamma 3, beta 2), and is still no common mistake."""
    ctx, x, x_hat, gamma, beta = affine_case(3.0, 2.0)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = x_hat + 0.2 * noise
    assert 0.2 < model.relative_error(y, x_hat) < 0.3
    assert model.explain_affine(ctx, x, y, gamma, beta) == model.UNEXPLAINED
    assert model.explain_affine(ctx, x, x_hat + 0.05 * noise, gamma, beta) == "gamma and beta are not applied"


def test_an_output_about_as_close_to_two_hypotheses_is_not_named() -> None:
    """Halfway between the right formula and beta added before scaling (and near a scaled output):
    each fits within 4%, but none twice as well as the next, so naming one would be a guess."""
    ctx, x, x_hat, gamma, beta = affine_case(1.2, 0.5)
    halfway = (gamma * x_hat + beta + (x_hat + beta) * gamma) / 2
    assert model.explain_affine(ctx, x, halfway, gamma, beta) == model.UNEXPLAINED
    assert model.explain_affine(ctx, x, gamma * x_hat + beta, gamma, beta) == ""
