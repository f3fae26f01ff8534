"""Builder: role mapping onto real constructors, --init parsing, describe/import_line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from bnconform.construct import DEFAULT, Builder, Unsupported, parse_init
from bnconform.errors import ConstructionError, UsageError, UserCodeError
from bnconform.target import load_target

FIXTURES = Path(__file__).parent / "fixtures" / "bn_variants.py"


def builder(name: str, init: dict | None = None) -> Builder:
    return Builder(load_target(f"{FIXTURES}:{name}"), init)


def construction_error(name: str, init: dict | None = None) -> str:
    with pytest.raises(ConstructionError) as info:
        builder(name, init)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize(("name", "rank", "ranks"), [
    ("BatchNorm1d", 3, (2, 3)), ("BatchNorm2d", 4, (4,)), ("BatchNorm3d", 5, (5,)),
])
def test_torch_batchnorm_builds(name: str, rank: int, ranks: tuple[int, ...]) -> None:
    b = Builder(load_target(f"torch.nn:{name}"))
    assert b.roles == {"num_features": "num_features", "eps": "eps", "momentum": "momentum",
                       "affine": "affine", "track_running_stats": "track_running_stats",
                       "device": "device", "dtype": "dtype"}
    # Ranks are discovered by calling (probes.domain), never read from the name.
    assert b.pinned_ranks() is None and not b.accepts("rank")
    module = b.build(3, rank=rank, eps=1e-3, momentum=None, affine=False,
                     track_running_stats=True, device="cpu", dtype=torch.float64)
    assert isinstance(module, getattr(torch.nn, name))
    assert module.eps == 1e-3 and module.momentum is None and module.weight is None
    assert module.running_mean.dtype == torch.float64


def test_defaults_are_not_passed() -> None:
    b = Builder(load_target("torch.nn:BatchNorm2d"))
    assert b.describe(3) == "BatchNorm2d(num_features=3)"
    assert b.build(3).momentum == 0.1


def test_alias_mapping_nf_epsilon_mom() -> None:
    b = builder("AliasBN")
    assert b.roles == {"num_features": "nf", "eps": "epsilon", "momentum": "mom"}
    assert b.param_for("momentum") == "mom" and b.param_for("affine") is None
    module = b.build(5, eps=1e-4, momentum=0.2)
    assert (module.nf, module.epsilon, module.mom) == (5, 1e-4, 0.2)
    assert b.describe(3, momentum=0.1) == "AliasBN(nf=3, mom=0.1)"
    assert b.pinned_ranks() is None


def test_unsupported_role_raises() -> None:
    b = builder("AliasBN")
    with pytest.raises(Unsupported) as info:
        b.build(3, affine=False)
    assert info.value.role == "affine"
    with pytest.raises(Unsupported):
        b.build(3, device="cpu")


def test_d2l_style_rank_role() -> None:
    b = builder("D2LBatchNorm")
    assert b.roles == {"num_features": "num_features", "rank": "num_dims"}
    assert b.build(3, rank=2).gamma.shape == (1, 3)
    assert b.build(3, rank=4).gamma.shape == (1, 3, 1, 1)
    assert b.describe(3, rank=4) == "D2LBatchNorm(num_features=3, num_dims=4)"
    with pytest.raises(ValueError):
        b.build(3)


def test_factory_function() -> None:
    b = builder("make_bn")
    assert b.roles == {"num_features": "channels"}
    assert isinstance(b.build(4), torch.nn.BatchNorm2d)
    assert b.pinned_ranks() is None


def test_factory_returning_non_module() -> None:
    with pytest.raises(UserCodeError) as info:
        builder("make_not_module").build(3)
    assert "returned list instead of an nn.Module" in str(info.value)


def test_user_constructor_exception_propagates(tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text(textwrap.dedent("""
        from torch import nn
        class BN(nn.Module):
            def __init__(self, num_features):
                raise ZeroDivisionError("boom")
    """))
    with pytest.raises(ZeroDivisionError):
        Builder(load_target(f"{tmp_path / 'boom.py'}:BN")).build(3)


def test_required_unknown_parameter_suggests_init() -> None:
    message = construction_error("GroupedBN")
    assert "required parameter 'groups' has no known meaning" in message
    assert "--init groups=VALUE" in message and "GroupedBN" in message


@pytest.mark.parametrize("annotation", ["NormConfig", '"NormConfig"'])
def test_a_required_config_object_points_to_a_factory_not_to_init(tmp_path: Path, annotation: str) -> None:
    # --init takes Python literals: "pass it with --init cfg=VALUE" would be a dead end
    (tmp_path / "configured.py").write_text(textwrap.dedent(f"""
        from dataclasses import dataclass
        from torch import nn

        @dataclass
        class NormConfig:
            channels: int

        class ConfiguredBN(nn.BatchNorm2d):
            def __init__(self, cfg: {annotation}):
                super().__init__(cfg.channels)
    """))
    with pytest.raises(ConstructionError) as info:
        Builder(load_target(f"{tmp_path / 'configured.py'}:ConfiguredBN"))
    assert str(info.value).endswith(
        "required parameter 'cfg' takes a NormConfig, which --init (Python literals) cannot give; check a factory"
        " instead, e.g. def make_bn(num_features): return ConfiguredBN(...)")


@pytest.mark.parametrize("annotation", ["int", "float | None", "'str'"])
def test_a_required_literal_parameter_still_suggests_init(tmp_path: Path, annotation: str) -> None:
    (tmp_path / "literal.py").write_text(textwrap.dedent(f"""
        from torch import nn

        class LiteralBN(nn.BatchNorm2d):
            def __init__(self, num_features: int, groups: {annotation}):
                super().__init__(num_features)
    """))
    with pytest.raises(ConstructionError, match="pass it with --init groups=VALUE"):
        Builder(load_target(f"{tmp_path / 'literal.py'}:LiteralBN"))


def test_init_fills_required_parameter() -> None:
    b = builder("GroupedBN", {"groups": 2})
    assert b.build(4).groups == 2
    assert b.describe(4) == "GroupedBN(num_features=4, groups=2)"


def test_single_short_or_int_parameter_is_num_features() -> None:
    assert builder("ShortName").roles == {"num_features": "k"}
    assert builder("TypedName").roles == {"num_features": "width"}
    assert "'layout'" in construction_error("StrName")


@pytest.mark.parametrize("name", ["width", "num_filters", "nc"])
def test_common_feature_count_names_are_aliases_beside_other_integers(name: str, tmp_path: Path) -> None:
    """ResNet-style `norm_layer(width)` and pix2pix-style `nc`, next to another integer that is not it."""
    (tmp_path / "named.py").write_text(textwrap.dedent(f"""
        from torch import nn
        class BN(nn.Module):
            def __init__(self, {name}, groups=1, scale=1.0):
                super().__init__()
                self.seen = {name}
    """))
    b = Builder(load_target(f"{tmp_path / 'named.py'}:BN"))
    assert b.roles == {"num_features": name}
    assert b.build(7).seen == 7


def test_required_role_without_default_gets_fallback() -> None:
    b = builder("RequiredMomentum")
    assert b.roles == {"num_features": "features", "momentum": "decay"}
    assert b.build(3).decay == 0.1
    assert b.build(3, momentum=0.9).decay == 0.9


def test_forwarding_subclass_reads_base_signature() -> None:
    b = builder("Forwarding")
    assert b.param_for("momentum") == "momentum" and b.pinned_ranks() is None
    assert b.build(3, momentum=0.3).momentum == 0.3


def test_init_unknown_key_lists_accepted_names() -> None:
    message = construction_error("AliasBN", {"groups": 2})
    assert "--init groups" in message and "accepted: nf, epsilon, mom" in message


def test_init_overrides_role_and_pins_it() -> None:
    b = builder("AliasBN", {"mom": 0.5})
    assert not b.accepts("momentum")
    assert b.build(3).mom == 0.5
    with pytest.raises(Unsupported):
        b.build(3, momentum=0.1)


def test_init_pinned_rank_gives_pinned_ranks() -> None:
    b = builder("D2LBatchNorm", {"num_dims": 2})
    assert b.pinned_ranks() == (2,) and not b.accepts("rank")
    assert b.build(3).gamma.shape == (1, 3)


def test_parse_init_literals_and_strings() -> None:
    parsed = parse_init(["groups=4", "eps=1e-3", "shape=(1, 2)", "mode=relu", "name='x y'",
                         "flag=true", "dev=cuda:0", "nothing=None"])
    assert parsed == {"groups": 4, "eps": 1e-3, "shape": (1, 2), "mode": "relu",
                      "name": "x y", "flag": True, "dev": "cuda:0", "nothing": None}


@pytest.mark.parametrize(
    "item", ["groups", "=4", "groups=", "1x=2", "g=[1, 2", "g=__import__('os')"]
)
def test_parse_init_bad_form(item: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_init([item])
    assert repr(item) in str(info.value) and "\n" not in str(info.value)


def test_parse_init_duplicate_key() -> None:
    with pytest.raises(UsageError, match="given twice"):
        parse_init(["a=1", "a=2"])


def test_describe_formats_device_and_dtype() -> None:
    b = Builder(load_target("torch.nn:BatchNorm1d"))
    text = b.describe(2, eps=DEFAULT, momentum=None, device=torch.device("cpu"),
                      dtype=torch.float64)
    assert text == "BatchNorm1d(num_features=2, momentum=None, device='cpu', dtype=torch.float64)"


def test_import_line_module_target() -> None:
    assert Builder(load_target("torch.nn:BatchNorm2d")).import_line() == (
        "from torch.nn import BatchNorm2d")


def test_import_line_file_target_runs_standalone(tmp_path: Path) -> None:
    (tmp_path / "sib_helper.py").write_text("EPS = 0.25\n")
    (tmp_path / "filebn.py").write_text(textwrap.dedent("""
        from torch import nn
        from sib_helper import EPS
        class Outer:
            class BN(nn.BatchNorm1d):
                pass
    """))
    b = Builder(load_target(f"{tmp_path / 'filebn.py'}:Outer.BN"))
    snippet = f"{b.import_line()}\nm = {b.describe(3, eps=0.5)}\nprint(type(m).__name__, m.eps)"
    out = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True,
                         cwd="/", check=True)
    assert out.stdout.strip() == "BN 0.5"
