"""A class whose gain and shift live in one (2, D) Parameter under other names: no weight or bias
slot is found; the gradient check judges the input's gradient, and affine-params names the Parameter."""

from __future__ import annotations

import functools

import torch
from torch import nn

from bnconform.api import run_check
from bnconform.probes import model
from tests._contexts import context


class PackedAffineNorm(nn.Module):
    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.gain_shift = nn.Parameter(torch.stack([torch.ones(num_features), torch.zeros(num_features)]))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.batch_norm(x, self.running_mean, self.running_var, None, None, self.training,
                                     self.momentum, self.eps)
        shape = [1, -1] + [1] * (x.dim() - 2)
        return y * self.gain_shift[0].view(shape) + self.gain_shift[1].view(shape)


def test_gradients_of_a_class_without_weight_or_bias_slots_judge_the_input() -> None:
    observed = model.gradients(context(PackedAffineNorm))
    assert list(observed.errors) == ["input"]
    assert observed.errors["input"] < 1e-9


def test_the_gradient_check_of_a_packed_affine_class_does_not_error() -> None:
    result = run_check(f"{__name__}:PackedAffineNorm")
    (grad,) = [c for c in result["checks"] if c["id"] == "grad-mismatch"]
    assert grad["status"] == "passed"


def affine_params_finding(name: str) -> dict:
    result = run_check(f"{__name__}:{name}")
    (affine,) = [c for c in result["checks"] if c["id"] == "affine-params"]
    (finding,) = affine["findings"]
    return finding


def test_affine_params_names_the_packed_parameter_instead_of_saying_nothing_is_learnable() -> None:
    finding = affine_params_finding("PackedAffineNorm")
    assert finding["message"] == "No weight (gamma) or bias (beta) found among the Parameters gain_shift (2, 5)"
    assert finding["observed"] == "Parameters gain_shift (2, 5); none is a weight or bias"
    assert finding["severity"] == "warning"



NoAffine = functools.partial(nn.BatchNorm2d, affine=False)


def test_a_class_without_parameters_is_told_nothing_learnable_was_found() -> None:
    finding = affine_params_finding("NoAffine")
    assert finding["message"] == "No learnable weight (gamma) or bias (beta) found"
    assert finding["observed"] == "none found"
