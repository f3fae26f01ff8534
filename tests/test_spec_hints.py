"""A fix is phrased in the convention of the spec in use: under keras, "use PyTorch's formula"
or "store the unbiased variance" would point the wrong way."""

from __future__ import annotations

import pytest

from bnconform.api import run_check
from bnconform.checks.momentum import convention_hint, default_hint
from bnconform.checks.running import estimator_hint
from bnconform.registry import get_check
from bnconform.spec import load_spec


def finding(result: dict, code: str) -> dict:
    return next(f for f in result["findings"] if f["code"] == code)


def test_an_inverted_momentum_under_keras_is_told_the_keras_formula() -> None:
    result = run_check("tests.corpus.keras_momentum_inverted:BatchNorm", spec="keras")
    assert finding(result, "momentum-inverted")["hint"] == (
        "The keras spec's convention: running = momentum * running + (1 - momentum) * batch with momentum=0.99."
        " A PyTorch value (0.1) is the weight of the NEW batch: use 1 - value, or flip the formula.")


def test_an_inverted_momentum_under_pytorch_is_told_the_pytorch_formula() -> None:
    result = run_check("tests.corpus.momentum_inverted_formula:BatchNorm", spec="pytorch")
    assert finding(result, "momentum-inverted")["hint"] == (
        "The pytorch spec's convention: running = (1 - momentum) * running + momentum * batch with momentum=0.1."
        " A Keras/MXNet/Flax value (0.9, 0.99) is the weight of the OLD value: use 1 - value, or flip the formula.")


@pytest.mark.parametrize(("spec_name", "hint"), [
    ("pytorch", "Use the pytorch spec's default: momentum=0.1, the weight of the new batch."),
    ("keras", "Use the keras spec's default: momentum=0.99, the weight of the old value (the new batch gets 0.01)."),
    ("mxnet", "Use the mxnet spec's default: momentum=0.9, the weight of the old value (the new batch gets 0.1)."),
])
def test_the_default_momentum_hint_names_the_spec_s_value_and_its_side(spec_name: str, hint: str) -> None:
    assert default_hint(load_spec(spec_name)) == hint


@pytest.mark.parametrize(("spec_name", "call"), [
    ("pytorch", "x.var(dim=axes, unbiased=True)"),
    ("tf-fused", "x.var(dim=axes, unbiased=True)"),
    ("keras", "x.var(dim=axes, unbiased=False)"),
    ("flax", "x.var(dim=axes, unbiased=False)"),
])
def test_the_estimator_hint_asks_for_the_spec_s_estimator(spec_name: str, call: str) -> None:
    spec = load_spec(spec_name)
    assert estimator_hint(spec) == (
        f"The {spec_name} spec stores the {spec.running_var_estimator} batch variance in running_var: update it"
        f" with {call} while normalizing with the biased variance.")


def test_a_keras_formula_is_never_suggested_under_a_keras_spec_as_the_other_convention() -> None:
    assert "Keras" not in convention_hint(load_spec("keras"))
    assert "PyTorch" not in convention_hint(load_spec("pytorch"))


@pytest.mark.parametrize("code", ["momentum-inverted", "momentum-default", "running-var-estimator"])
def test_the_registered_hint_is_true_under_every_spec(code: str) -> None:
    # `bnconform explain` shows it with no spec: it names no single convention as the rule
    assert not get_check(code).hint.startswith(("PyTorch", "Use the spec's default (PyTorch"))
