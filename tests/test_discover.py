"""discover / discover_by_behaviour on real modules, and get/set keeping each slot's form."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from bnconform.discover import Discovery, Slot, discover, discover_by_behaviour, misregistered
from bnconform.target import load_target

FIXTURES = Path(__file__).parent / "fixtures" / "bn_variants.py"


def fixture(name: str):
    return load_target(f"{FIXTURES}:{name}").obj


def names(found: Discovery) -> dict[str, tuple[str, str, str]]:
    return {role: (s.name, s.kind, s.found_by) for role, s in found.slots.items()}


def test_torch_batchnorm_all_roles() -> None:
    bn = nn.BatchNorm2d(3)
    found = discover(bn, 3)
    assert names(found) == {
        "weight": ("weight", "parameter", "name"),
        "bias": ("bias", "parameter", "name"),
        "running_mean": ("running_mean", "buffer", "name"),
        "running_var": ("running_var", "buffer", "name"),
        "num_batches_tracked": ("num_batches_tracked", "buffer", "name"),
    }
    assert found.get(bn, "running_var") is bn.running_var
    assert found.kind("weight") == "parameter" and found.has("bias")


def test_torch_batchnorm_without_affine_or_stats() -> None:
    found = discover(nn.BatchNorm1d(4, affine=False, track_running_stats=False), 4)
    assert found.slots == {}
    assert found.get(nn.BatchNorm1d(4), "weight") is None


def test_gamma_beta_parameters_and_attribute_running_stats() -> None:
    module = fixture("D2LBatchNorm")(3, 4)
    found = discover(module, 3)
    assert names(found) == {
        "weight": ("gamma", "parameter", "name"),
        "bias": ("beta", "parameter", "name"),
        "running_mean": ("moving_mean", "attribute", "name"),
        "running_var": ("moving_var", "attribute", "name"),
    }


def test_set_keeps_attribute_shape_and_rebinds() -> None:
    module = fixture("D2LBatchNorm")(3, 4)
    found = discover(module, 3)
    old = module.moving_mean
    found.set(module, "running_mean", torch.tensor([1.0, 2.0, 3.0]))
    assert module.moving_mean.shape == (1, 3, 1, 1) and module.moving_mean is not old
    assert found.get(module, "running_mean").flatten().tolist() == [1.0, 2.0, 3.0]


def test_set_parameter_in_place_keeps_kind_and_dtype() -> None:
    module = fixture("D2LBatchNorm")(3, 4).double()
    found = discover(module, 3)
    gamma = module.gamma
    found.set(module, "weight", torch.tensor([2.0, 3.0, 4.0]))
    assert module.gamma is gamma and isinstance(module.gamma, nn.Parameter)
    assert gamma.shape == (1, 3, 1, 1) and gamma.dtype == torch.float64
    assert gamma.requires_grad and gamma.flatten().tolist() == [2.0, 3.0, 4.0]


def test_set_buffer_and_scalar_counter() -> None:
    bn = nn.BatchNorm2d(2)
    found = discover(bn, 2)
    found.set(bn, "running_var", torch.tensor([5.0, 6.0]))
    found.set(bn, "num_batches_tracked", torch.tensor(7))
    assert bn.running_var.tolist() == [5.0, 6.0] and "running_var" in dict(bn.named_buffers())
    assert bn.num_batches_tracked.item() == 7 and bn.num_batches_tracked.dtype == torch.long
    with pytest.raises(ValueError):
        found.set(bn, "running_mean", torch.zeros(3))


def test_wrapper_holding_batchnorm() -> None:
    module = fixture("Wrapper")(3)
    found = discover(module, 3)
    assert found.slots["weight"].name == "bn.weight"
    assert found.slots["running_mean"] == Slot("running_mean", "bn.running_mean", "buffer", "name")
    assert found.get(module, "running_mean") is module.bn.running_mean


def test_numel_must_match_num_features() -> None:
    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mean = torch.zeros(5)  # wrong size: not a running mean for C=3
            self.register_buffer("pop_mean", torch.zeros(3))
            self.w = nn.Parameter(torch.ones(3))
            self.register_buffer("weight", torch.ones(3))  # a buffer loses to a Parameter

    found = discover(Mixed(), 3)
    assert found.slots["running_mean"].name == "pop_mean"
    assert found.slots["weight"].name == "w"


def test_running_std_is_recorded() -> None:
    class StdBN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("running_std", torch.ones(3))

    slot = discover(StdBN(), 3).slots["running_var"]
    assert slot.name == "running_std" and slot.holds_std is True
    assert discover(nn.BatchNorm1d(3), 3).slots["running_var"].holds_std is False


def test_discover_by_behaviour_finds_odd_buffers() -> None:
    module = fixture("OddBuffers")(3).train()
    x = torch.randn(8, 3, 2, 2) * 0.5 + 4.0
    mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
    found = discover_by_behaviour(module, 3, lambda: module(x), mean, var)
    assert names(found) == {
        "running_mean": ("aaa", "buffer", "behaviour"),
        "running_var": ("bbb", "buffer", "behaviour"),
    }


def test_discover_by_behaviour_keeps_name_matches() -> None:
    bn = nn.BatchNorm2d(3).train()
    x = torch.randn(4, 3, 2, 2) + 3.0
    called = []
    found = discover_by_behaviour(bn, 3, lambda: called.append(bn(x)), x.mean((0, 2, 3)),
                                  x.var((0, 2, 3)))
    assert found.slots["running_mean"].found_by == "name" and not called


def test_discovery_is_frozen() -> None:
    found = discover(nn.BatchNorm1d(2), 2)
    with pytest.raises(TypeError):
        found.slots["weight"] = found.slots["bias"]  # type: ignore[index]


class Rebinding(nn.Module):
    """Running statistics under odd names, plus attributes a training step rebinds or moves away."""

    def __init__(self, movers: tuple[str, ...]) -> None:
        super().__init__()
        self.movers = movers
        self.register_buffer("aaa", torch.zeros(3))
        self.register_buffer("bbb", torch.ones(3))
        self.gone = torch.zeros(3)
        self.shrinks = torch.zeros(3)
        self.away = torch.full((3,), 10.0)
        self.register_buffer("pair", torch.zeros(2))  # fewer values than channels: not a statistic

    def step(self, mean: torch.Tensor, var: torch.Tensor) -> None:
        if "aaa" in self.movers:
            self.aaa += 0.1 * (mean - self.aaa)
            self.bbb += 0.1 * (var - self.bbb)
        self.gone = None  # rebound to something that is not a tensor
        self.shrinks = torch.zeros(2)  # rebound to a tensor of another size
        self.away = self.away + 1.0  # moves away from both batch statistics
        self.pair += 1.0


MEAN, VAR = torch.full((3,), 5.0), torch.full((3,), 2.0)


def test_behaviour_skips_attributes_rebound_to_other_things_and_finds_the_movers() -> None:
    module = Rebinding(("aaa",))
    found = discover_by_behaviour(module, 3, lambda: module.step(MEAN, VAR), MEAN, VAR)
    assert names(found) == {"running_mean": ("aaa", "buffer", "behaviour"),
                            "running_var": ("bbb", "buffer", "behaviour")}


def test_a_tensor_that_moves_away_from_the_batch_statistics_is_no_running_statistic() -> None:
    module = Rebinding(())
    found = discover_by_behaviour(module, 3, lambda: module.step(MEAN, VAR), MEAN, VAR)
    assert names(found) == {}


def test_a_running_statistic_starting_one_unit_from_the_batch_statistic_is_found() -> None:
    """Progress is a fraction of the starting distance, whatever that distance is (here exactly 1)."""
    module = Rebinding(("aaa",))
    module.aaa.copy_(MEAN - torch.tensor([1.0, 0.0, 0.0]))
    found = discover_by_behaviour(module, 3, lambda: module.step(MEAN, VAR), MEAN, VAR)
    assert found.slots["running_mean"].name == "aaa"


def test_behaviour_finds_running_statistics_of_many_channels() -> None:
    """Sizes are compared by value: 300 channels is past CPython's cache of small ints."""

    class Wide(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("aaa", torch.zeros(300))

        def step(self, mean: torch.Tensor) -> None:
            self.aaa += 0.1 * (mean - self.aaa)

    module, mean = Wide(), torch.full((300,), 5.0)
    found = discover_by_behaviour(module, 300, lambda: module.step(mean), mean, torch.ones(300))
    assert found.slots["running_mean"].name == "aaa"


@pytest.mark.parametrize("values", [0, 3])
def test_a_counter_holds_exactly_one_value(values: int) -> None:
    class Counted(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("steps", torch.zeros(values, dtype=torch.long))

    assert not discover(Counted(), 3).has("num_batches_tracked")


def test_a_running_statistic_holds_one_value_per_channel_or_one_for_all() -> None:
    class Sized(nn.Module):
        def __init__(self, values: int) -> None:
            super().__init__()
            self.register_buffer("running_mean", torch.zeros(values))

    assert discover(Sized(1), 3).has("running_mean")
    assert discover(Sized(3), 3).has("running_mean")
    assert not discover(Sized(7), 3).has("running_mean")
    assert not discover(Sized(2), 3).has("running_mean")
    assert not discover(Sized(0), 3).has("running_mean")


def test_of_two_partial_movers_the_one_covering_more_of_the_distance_is_the_statistic() -> None:
    class TwoAverages(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("fast", torch.zeros(3))
            self.register_buffer("slow", torch.zeros(3))

        def step(self, mean: torch.Tensor) -> None:
            self.fast += 0.6 * (mean - self.fast)
            self.slow += 0.3 * (mean - self.slow)

    module = TwoAverages()
    found = discover_by_behaviour(module, 3, lambda: module.step(MEAN), MEAN, torch.full((3,), -7.0))
    assert found.slots["running_mean"].name == "fast"


def test_a_cache_of_the_last_batch_off_by_rounding_is_a_jump_not_a_running_average() -> None:
    """A copy of the batch mean computed another way lands within rounding of the target: it jumped
    all the way, so the tensor that moved part of the way is the running average."""

    class CacheAndAverage(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("last", torch.zeros(3, dtype=torch.float64))
            self.register_buffer("average", torch.zeros(3))

        def step(self, mean: torch.Tensor) -> None:
            self.last.copy_(mean.double() + 1e-9)
            self.average += 0.1 * (mean - self.average)

    module = CacheAndAverage()
    found = discover_by_behaviour(module, 3, lambda: module.step(MEAN), MEAN, torch.full((3,), -7.0))
    assert found.slots["running_mean"].name == "average"


def test_name_matches_compare_sizes_by_value() -> None:
    """300 channels is past CPython's cache of small ints: an identity test would miss them."""
    found = discover(nn.BatchNorm1d(300), 300)
    assert set(found.slots) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    found.set(nn.BatchNorm1d(300), "running_mean", torch.zeros(300))


def test_set_refuses_fewer_values_than_the_slot_holds() -> None:
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="holds 3 values, got 2"):
        discover(bn, 3).set(bn, "running_mean", torch.zeros(2))


def test_set_refuses_a_statistic_the_class_rebound_to_an_empty_tensor() -> None:
    bn = nn.BatchNorm1d(3)
    found = discover(bn, 3)
    bn.running_mean = torch.zeros(0)
    with pytest.raises(ValueError, match="holds 0 values"):
        found.set(bn, "running_mean", torch.zeros(3))


@pytest.mark.parametrize("kind, wanted, expected", [
    ("parameter", "buffer", "m is a parameter"),
    ("attribute", "buffer", "m is a plain attribute"),
    ("buffer", "buffer", ""),
    ("parameter", "parameter", ""),
], ids=["parameter-for-buffer", "attribute-for-buffer", "buffer", "parameter"])
def test_misregistered_names_every_slot_of_another_kind(kind: str, wanted: str, expected: str) -> None:
    # Kinds built at run time, as from a deserialized Discovery: compared by value, not identity.
    found = Discovery({"running_mean": Slot("running_mean", "m", "".join(kind), "name")})
    assert misregistered(found, ("running_mean", "running_var"), "".join(wanted)) == expected


class Movers(nn.Module):
    """A running mean under an odd name, after tensors a step rebinds, grows or moves that are no
    running statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("early", torch.zeros(3))  # before aaa in iteration order
        self.register_buffer("aaa", torch.zeros(3))
        self.register_buffer("wide", torch.zeros(6))  # more values than channels
        self.ppp = nn.Parameter(torch.zeros(3))
        self.grows = torch.zeros(3)

    def step(self, mean: torch.Tensor, moves_aaa: bool = True) -> None:
        self.early = torch.zeros(2)  # a buffer resized
        if moves_aaa:
            self.aaa += 0.1 * (mean - self.aaa)
        self.wide += 1.0
        with torch.no_grad():
            self.ppp += 0.5 * (mean - self.ppp)  # a parameter, however it moves, is learned
        self.grows = torch.zeros(4)


def test_behaviour_looks_past_resized_tensors_and_ignores_parameters_and_wider_buffers() -> None:
    module = Movers()
    found = discover_by_behaviour(module, 3, lambda: module.step(MEAN), MEAN, VAR)
    assert names(found) == {"running_mean": ("aaa", "buffer", "behaviour")}


def test_a_parameter_moving_toward_the_batch_mean_is_no_running_statistic() -> None:
    module = Movers()
    found = discover_by_behaviour(module, 3, lambda: module.step(MEAN, moves_aaa=False), MEAN, VAR)
    assert names(found) == {}


def test_a_buffer_that_becomes_nan_or_starts_at_the_target_is_no_running_statistic() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("nan", torch.zeros(3))
            self.register_buffer("there", MEAN.clone())  # already at the batch mean

        def step(self) -> None:
            self.nan.fill_(float("nan"))
            self.there += 1.0

    module = Broken()
    found = discover_by_behaviour(module, 3, module.step, MEAN, VAR)
    assert names(found) == {}


def test_progress_is_a_fraction_of_each_tensors_own_distance() -> None:
    """A tensor starting nearer the target that covers more of its distance wins over one that
    starts far away and moves further in absolute terms."""

    class NearAndFar(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("near", torch.tensor([0.0, 5.0, 5.0]))  # 5 from MEAN
            self.register_buffer("far", torch.tensor([-5.0, 5.0, 5.0]))  # 10 from MEAN

        def step(self) -> None:
            self.near += 0.6 * (MEAN - self.near)
            self.far += 0.3 * (MEAN - self.far)

    module = NearAndFar()
    found = discover_by_behaviour(module, 3, module.step, MEAN, torch.full((3,), -7.0))
    assert found.slots["running_mean"].name == "near"
