"""The closest-spec sentence claims only what was observed: layout counts, behaviours a spec has
no use for count, a momentum given to the constructor is no observed default, and "exactly"
is said only when every property of that spec was observed."""

from __future__ import annotations

from pathlib import Path

from bnconform.api import run_check
from bnconform.fingerprint import LayoutSeen
from bnconform.probes.statistics import Structure
from bnconform.render.common import closest_spec_sentence
from bnconform.spec import load_builtin_specs

FROZEN = f"{Path(__file__).parent / 'sample_project' / 'tinynet' / 'layers.py'}:FrozenBatchNorm2d"


def statuses(result: dict) -> dict[str, dict]:
    return {c["id"]: c for c in result["checks"]}


def test_a_channels_first_tutorial_is_not_like_a_channels_last_spec() -> None:
    result = run_check("bnconform.examples.tutorial:BatchNorm")
    closest = result["fingerprint"]["closest_spec"]
    # flax differs in as many (axes, momentum x2) but its ranks could not be compared: the tie is mxnet's
    assert (closest["name"], closest["differences"]) == (
        "mxnet", ["input-rank-unsupported", "momentum-default", "momentum-inverted"])


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


SPECS = {spec.name: spec for spec in load_builtin_specs()}


def reducing_over(axes: tuple[int, ...] | None, rank: int = 4) -> Structure:
    return Structure(rank, axes, "biased", "batch", 1.0, 30)


def test_statistics_per_sample_differ_from_every_spec() -> None:
    seen = LayoutSeen(4, 1, (2, 3, 4, 5), (4,), reducing_over((2, 3)))
    assert all(seen.compare(spec)[0] == ["reduction-axes"] for spec in SPECS.values())


def test_axes_no_reduction_explains_differ_from_every_spec() -> None:
    seen = LayoutSeen(4, 1, (2, 3, 4, 5), (4,), reducing_over(None))
    assert all("reduction-axes" in seen.compare(spec)[0] for spec in SPECS.values())


def test_axes_are_compared_with_each_specs_own() -> None:
    seen = LayoutSeen(4, 1, (2, 3, 4, 5), (4,), reducing_over((0, 2, 3)))
    assert seen.compare(SPECS["pytorch"]) == ([], [])
    assert seen.compare(SPECS["keras"])[0] == ["reduction-axes"]


def test_ranks_tried_in_one_layout_are_not_compared_with_a_spec_of_the_other() -> None:
    seen = LayoutSeen(2, 1, (2, 3, 4, 5), (2,), reducing_over((0,), rank=2))
    assert seen.compare(SPECS["pytorch"]) == (["input-rank-unsupported"], [])
    assert seen.compare(SPECS["keras"]) == ([], ["input-rank-unsupported"])
    assert LayoutSeen(2, 1, (2, 3), None, None).compare(SPECS["pytorch"]) == ([], ["input-rank-unsupported"])


def test_torch_batchnorm1d_under_a_channels_last_spec_is_pytorch_in_what_was_compared() -> None:
    result = run_check("torch.nn:BatchNorm1d", spec="flax")
    closest = result["fingerprint"]["closest_spec"]
    assert (closest["name"], closest["differences"]) == ("pytorch", [])
    assert "input-rank-unsupported" in closest["unobserved"]
    assert "exactly" not in closest_spec_sentence(result)
