"""The closest-spec sentence claims only what was observed: layout counts, behaviours a spec has
no use for count, a momentum given to the constructor is no observed default, and "exactly"
is said only when every property of that spec was observed."""

from __future__ import annotations

from pathlib import Path

from bnconform.api import run_check
from bnconform.render.common import closest_spec_sentence

FROZEN = f"{Path(__file__).parent / 'sample_project' / 'tinynet' / 'layers.py'}:FrozenBatchNorm2d"


def statuses(result: dict) -> dict[str, dict]:
    return {c["id"]: c for c in result["checks"]}


def test_a_channels_first_tutorial_is_not_like_a_channels_last_spec() -> None:
    result = run_check("bnconform.examples.tutorial:BatchNorm")
    closest = result["fingerprint"]["closest_spec"]
    assert (closest["name"], closest["differences"]) == ("mxnet", ["momentum-default", "momentum-inverted"])


def test_a_frozen_layer_is_like_frozen_in_what_was_observed_not_exactly() -> None:
    result = run_check(FROZEN)
    closest = result["fingerprint"]["closest_spec"]
    assert closest["name"] == "frozen" and closest["differences"] == []
    assert {"momentum-default", "momentum-inverted"} <= set(closest["unobserved"])
    sentence = closest_spec_sentence(result)
    assert sentence.startswith("Closest shipped convention: behaves like the frozen spec in every property observed")
    assert "exactly" not in sentence


def test_torch_batchnorm_is_exactly_pytorch() -> None:
    result = run_check("torch.nn:BatchNorm2d")
    assert result["fingerprint"]["closest_spec"] == {"name": "pytorch", "differences": [], "unobserved": []}
    assert closest_spec_sentence(result) == "Closest shipped convention: behaves exactly like the pytorch spec."


def test_a_momentum_given_to_the_constructor_is_not_an_observed_default() -> None:
    result = run_check("torch.nn:BatchNorm2d", init={"momentum": 0.01})
    closest = result["fingerprint"]["closest_spec"]
    assert closest["differences"] == [] and "momentum-default" in closest["unobserved"]
    checks = statuses(result)
    for code in ("momentum-default", "momentum-ignored", "momentum-none"):
        assert checks[code]["status"] == "skipped"
        assert checks[code]["reason"].startswith("momentum is given to the constructor (0.01")
