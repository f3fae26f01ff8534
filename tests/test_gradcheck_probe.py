"""The gradient probes (bnconform.probes.gradcheck) on classes whose backward is wrong in one
known place: which gradient is named, in which mode, with which step and tolerance (issue 13)."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from bnconform.probes import gradcheck
from bnconform.probes.basics import found_tensors
from tests._contexts import context
from tests.fixtures.float32_inside import Float32BatchNorm


class _DoubledGradient(torch.autograd.Function):
    """The identity whose backward doubles the gradient."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


class InputGradientDoubled(nn.BatchNorm1d):
    """Right outputs and right weight/bias gradients; the input's gradient is twice the truth."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_DoubledGradient.apply(x))


class UnusedWeight(nn.BatchNorm1d):
    """A weight Parameter the forward never reads: it gets no gradient at all."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.batch_norm(x, self.running_mean, self.running_var, None, self.bias,
                                        self.training, self.momentum, self.eps)


@pytest.mark.parametrize("train", [True, False])
def test_the_directional_check_passes_torch_in_both_modes(train: bool) -> None:
    result = gradcheck.directional(context(nn.BatchNorm1d), train)
    assert result == gradcheck.GradCheck("train" if train else "eval", {})


@pytest.mark.parametrize("train", [True, False])
def test_the_directional_check_names_the_one_wrong_gradient(train: bool) -> None:
    result = gradcheck.directional(context(InputGradientDoubled), train)
    assert result.mode == ("train" if train else "eval")
    assert list(result.wrong) == ["input"]
    analytic, numeric = (float(part.split()[1]) for part in result.wrong["input"].split(", "))
    assert analytic == pytest.approx(2 * numeric, rel=1e-4)  # printed to 6 significant digits


def test_a_parameter_without_a_gradient_is_wrong_with_an_analytic_nan() -> None:
    result = gradcheck.directional(context(UnusedWeight), True)
    assert list(result.wrong) == ["weight"]
    assert result.wrong["weight"].startswith("analytic nan, numeric 0")


def test_the_step_and_tolerances_follow_the_precision_the_class_computes_in() -> None:
    assert gradcheck.differencing(context(nn.BatchNorm1d)) == (1e-6, 1e-5, 1e-3)
    assert gradcheck.differencing(context(Float32BatchNorm)) == (1e-3, 1e-3, 1e-2)
    assert gradcheck.directional(context(Float32BatchNorm), True).wrong == {}


def test_a_central_difference_is_exact_on_a_quadratic_and_leaves_the_tensor_as_it_was() -> None:
    t = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    u = torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64)
    slope = gradcheck.central_difference(lambda: (t**2).sum(), t, u, h=0.5)
    assert slope == pytest.approx(2 * 1.0 * 1.0 + 2 * 2.0 * 0.5)  # 2 t . u
    assert t.tolist() == [1.0, 2.0, 3.0]


def test_full_gradcheck_sees_a_wrong_input_gradient_in_both_modes() -> None:
    full = gradcheck.full_gradcheck(context(InputGradientDoubled, profile="thorough"))
    assert "GradcheckError" in full.gradcheck["train"]
    assert "GradcheckError" in full.gradcheck["eval"]


def test_full_gradcheck_of_a_class_without_affine_parameters_checks_the_input_alone() -> None:
    full = gradcheck.full_gradcheck(context(functools.partial(nn.BatchNorm1d, affine=False), profile="thorough"))
    assert full == gradcheck.FullGradCheck({"train": "", "eval": ""}, {"train": "", "eval": ""})


class DetachedBufferAffine(nn.BatchNorm1d):
    """Affine weight and bias held as buffers and applied detached (a frozen layer's style): not
    parameters, so no gradient of theirs is checked."""

    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(num_features, affine=False, **kwargs)
        del self.weight, self.bias  # affine=False registered them as None parameters
        self.register_buffer("weight", torch.full((num_features,), 1.5))
        self.register_buffer("bias", torch.full((num_features,), 0.25))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1, -1] + [1] * (x.dim() - 2)
        return super().forward(x) * self.weight.detach().view(shape) + self.bias.detach().view(shape)


def test_full_gradcheck_differentiates_parameters_only_never_buffers() -> None:
    ctx = context(DetachedBufferAffine, profile="thorough")
    found = ctx.probe(found_tensors)
    assert (found.kind("weight"), found.kind("bias")) == ("buffer", "buffer")
    passed = {"train": "", "eval": ""}
    assert gradcheck.full_gradcheck(ctx) == gradcheck.FullGradCheck(passed, passed)
