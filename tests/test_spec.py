"""Spec loading: built-in facts, momentum conversions, extends, and one-line load errors."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnconform.errors import SpecError, UsageError
from bnconform.spec import Spec, Tolerance, builtin_spec_names, load_builtin_specs, load_spec

BUILTINS = ["flax", "frozen", "keras", "mxnet", "onnx", "paddle", "pytorch", "tf-fused"]
CHANNELS_FIRST = {2: (0,), 3: (0, 2), 4: (0, 2, 3), 5: (0, 2, 3, 4)}
CHANNELS_LAST = {2: (0,), 3: (0, 1), 4: (0, 1, 2), 5: (0, 1, 2, 3)}


def test_builtin_names_and_all_load() -> None:
    assert builtin_spec_names() == BUILTINS
    specs = load_builtin_specs()
    assert [s.name for s in specs] == BUILTINS
    for spec in specs:
        assert isinstance(spec, Spec)
        assert spec.path.endswith(f"{spec.name}.toml")
        assert spec.description and spec.source


# spec name -> facts from the brief / shared/CONVENTIONS.md
FACTS: dict[str, dict[str, object]] = {
    "pytorch": dict(
        momentum_convention="new-weight", momentum_default=0.1, momentum_none="cumulative",
        norm_variance="biased", running_var_estimator="unbiased", eps=1e-5,
        eps_placement="inside-sqrt", variance_algorithm="two-pass", channel_axis=1,
        ranks=(2, 3, 4, 5), reduction_axes=CHANNELS_FIRST, num_batches_tracked=True,
        update_under_no_grad=True, eval_uses="running", eval_updates_running_stats=False,
        batch_of_one="error", state_dict_interop="torch.nn.BatchNorm",
        track_running_stats=True, running_mean_init=0.0, running_var_init=1.0,
        weight_init=1.0, bias_init=0.0),
    "keras": dict(
        momentum_convention="old-weight", momentum_default=0.99, momentum_none="unsupported",
        norm_variance="biased", running_var_estimator="biased", eps=1e-3, channel_axis=-1,
        ranks=(2, 3, 4, 5), reduction_axes=CHANNELS_LAST, num_batches_tracked=False,
        batch_of_one="allowed", state_dict_interop=None, eval_uses="running"),
    "tf-fused": dict(
        momentum_convention="old-weight", momentum_default=0.99, norm_variance="biased",
        running_var_estimator="unbiased", eps=1e-3, channel_axis=-1, ranks=(4, 5),
        num_batches_tracked=False, batch_of_one="allowed", state_dict_interop=None),
    "flax": dict(
        momentum_convention="old-weight", momentum_default=0.99, norm_variance="biased",
        running_var_estimator="biased", eps=1e-5, channel_axis=-1, variance_algorithm="fast",
        reduction_axes=CHANNELS_LAST, num_batches_tracked=False, state_dict_interop=None),
    "onnx": dict(
        momentum_convention="old-weight", momentum_default=0.9, norm_variance="biased",
        running_var_estimator="biased", eps=1e-5, channel_axis=1,
        reduction_axes=CHANNELS_FIRST, variance_algorithm="two-pass"),
    "mxnet": dict(
        momentum_convention="old-weight", momentum_default=0.9, norm_variance="biased",
        running_var_estimator="biased", eps=1e-5, channel_axis=1),
    "paddle": dict(
        momentum_convention="old-weight", momentum_default=0.9, norm_variance="biased",
        running_var_estimator="biased", eps=1e-5, channel_axis=1),
}


@pytest.mark.parametrize(("name", "attr", "expected"),
                         [(n, a, v) for n, facts in FACTS.items() for a, v in facts.items()])
def test_builtin_fact(name: str, attr: str, expected: object) -> None:
    observed = getattr(load_spec(name), attr)
    assert (dict(observed) if attr == "reduction_axes" else observed) == expected


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_tolerances(name: str) -> None:
    spec = load_spec(name)
    assert spec.tolerance("float64") == Tolerance(1e-7, 1e-7)
    assert spec.tolerance("torch.float32") == Tolerance(1e-5, 1e-5)
    assert spec.tolerance("half") == Tolerance(1e-3, 1e-3)
    assert spec.tolerance("torch.bfloat16") == Tolerance(1.6e-2, 1e-2)


def test_tolerance_unknown_dtype() -> None:
    with pytest.raises(SpecError, match="float64, float32, float16, bfloat16"):
        load_spec("pytorch").tolerance("int8")


def test_axes_for_rank() -> None:
    assert load_spec("pytorch").axes_for_rank(4) == (0, 2, 3)
    assert load_spec("keras").axes_for_rank(3) == (0, 1)
    with pytest.raises(ValueError, match="ranks \\[4, 5\\]"):
        load_spec("tf-fused").axes_for_rank(2)


def test_new_weight_conversions() -> None:
    torch_spec, keras, onnx = load_spec("pytorch"), load_spec("keras"), load_spec("onnx")
    assert torch_spec.new_weight(0.1) == 0.1
    assert keras.new_weight(0.99) == pytest.approx(0.01)
    assert onnx.new_weight(0.9) == pytest.approx(0.1)
    assert keras.momentum_for_new_weight(0.1) == pytest.approx(0.9)
    assert torch_spec.momentum_for_new_weight(0.3) == 0.3
    with pytest.raises(ValueError, match="momentum"):
        torch_spec.new_weight(1.5)


@settings(deadline=None, database=None)  # no timing assertion, no .hypothesis/ folder
@given(name=st.sampled_from(BUILTINS), m=st.floats(0.0, 1.0))
def test_new_weight_round_trip(name: str, m: float) -> None:
    spec = load_spec(name)
    w = spec.new_weight(m)
    assert 0.0 <= w <= 1.0
    # 1 - (1 - m) is exact only to within one ulp of 1.0.
    assert math.isclose(spec.momentum_for_new_weight(w), m, rel_tol=0, abs_tol=2.3e-16)


def test_spec_is_frozen_and_read_only() -> None:
    spec = load_spec("pytorch")
    with pytest.raises(AttributeError):
        spec.eps = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.reduction_axes[6] = (0,)  # type: ignore[index]
    hash(spec)


def write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_extends_overrides_a_few_keys(tmp_path: Path) -> None:
    path = write(tmp_path, '[spec]\nextends = "pytorch"\nname = "mine"\n\n'
                 '[running_stats]\nvariance = "biased"\n\n[interop]\nstate_dict = "none"\n',
                 "mine.toml")
    spec = load_spec(str(path))
    assert (spec.name, spec.path) == ("mine", str(path))
    assert spec.running_var_estimator == "biased"
    assert spec.state_dict_interop is None
    assert spec.momentum_convention == "new-weight" and spec.eps == 1e-5
    assert spec.description == load_spec("pytorch").description


def test_extends_a_relative_path(tmp_path: Path) -> None:
    write(tmp_path, '[spec]\nextends = "keras"\nname = "base"\n[normalization]\neps = 0.5\n',
          "base.toml")
    path = write(tmp_path, '[spec]\nextends = "base.toml"\nname = "child"\n', "child.toml")
    spec = load_spec(str(path))
    assert (spec.name, spec.eps, spec.channel_axis) == ("child", 0.5, -1)


def test_tf_fused_extends_keras() -> None:
    keras, fused = load_spec("keras"), load_spec("tf-fused")
    assert fused.running_var_estimator == "unbiased" != keras.running_var_estimator
    assert fused.axes_for_rank(4) == keras.axes_for_rank(4)


PYTORCH_HEAD = '[spec]\nextends = "pytorch"\nname = "bad"\n\n'  # lines 1-4


@pytest.mark.parametrize(("body", "line", "pieces"), [
    ("[normalization]\neps == 1e-5\nvariance = 'biased'\n", 6, ["TOML syntax error"]),
    ("[layout]\nchannel_axis = 1\nranks = [2, 3\n", 7, ["TOML syntax error", "Unclosed"]),
    ("[normalization]\neps = 1e-5\nepsilon = 1e-3\n", 7,
     ["[normalization] epsilon", "unknown key", "variance, eps, eps_placement"]),
    ("[running_stats]\nmomentum_convention = 'newest'\n", 6,
     ["[running_stats] momentum_convention", "'newest' is not one of 'new-weight', 'old-weight'"]),
    ("[running_stats]\n# why\ntrack = 'yes'\n", 7,
     ["[running_stats] track", "expected a boolean", "string 'yes'"]),
    ("[normalization]\neps = -1.0\n", 6, ["[normalization] eps", "out of range", "> 0"]),
    ("[running_stats]\nmomentum_default = 1.5\n", 6, ["momentum_default", "<= 1.0"]),
    ("[layout]\nranks = [2, 3, 4, 5]\n"
     "reduction_axes = { 2 = [0], 3 = [0, 2], 4 = [0, 1, 3], 5 = [0, 2, 3, 4] }\n", 7,
     ["[layout] reduction_axes", "rank 4", "axis 1 is the channel axis"]),
    ("[layout]\nchannel_axis = -1\n", 6, ["[layout] channel_axis", "is the channel axis"]),
    ("[layout]\nchannel_axis = 2\n", 6, ["[layout] channel_axis", "1 (channels first)"]),
    ("[layout]\nreduction_axes = { 2 = [0], 3 = [0, 2], 4 = [0, 2, 3] }\n", 6,
     ["reduction_axes", "rank 5 has no reduction_axes entry"]),
    ("[layout]\nreduction_axes = { 2 = [0], 3 = [0, 2], 4 = [0, 2, 4], 5 = [0, 2] }\n", 6,
     ["reduction_axes", "axis 4 is outside a rank-4 input"]),
    ("[training]\nbatch_of_one = 'error'\n[colour]\nhue = 1\n", 7,
     ["[colour]", "unknown table", "[running_stats]", "[tolerance.bfloat16]"]),
    ("[tolerance.float32]\nrtol = 1e-5\natol = 'tiny'\n", 7,
     ["[tolerance.float32] atol", "expected a number"]),
    ("[running_stats]\ntrack = false\n", 6, ["[running_stats] track", "uses = 'batch'"]),
])
def test_malformed_spec(tmp_path: Path, body: str, line: int, pieces: list[str]) -> None:
    path = write(tmp_path, PYTORCH_HEAD + body)
    with pytest.raises(SpecError) as info:
        load_spec(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: ")
    for piece in pieces:
        assert piece in message


def test_missing_required_key(tmp_path: Path) -> None:
    text = load_spec("pytorch").path
    lines = Path(text).read_text().splitlines()
    kept = [ln for ln in lines if not ln.startswith("momentum_default")]
    path = write(tmp_path, "\n".join(kept) + "\n")
    with pytest.raises(SpecError) as info:
        load_spec(str(path))
    header = kept.index("[running_stats]") + 1
    assert str(info.value) == (f"{path}:{header}: [running_stats] momentum_default: "
                               "required key is missing")


def test_name_is_not_inherited(tmp_path: Path) -> None:
    path = write(tmp_path, '[spec]\nextends = "keras"\n')
    with pytest.raises(SpecError, match=r"bad.toml:1: \[spec\] name: required key is missing"):
        load_spec(str(path))


def test_bad_extends(tmp_path: Path) -> None:
    path = write(tmp_path, '[spec]\nname = "x"\nextends = "tensorflow"\n')
    with pytest.raises(SpecError, match=r"bad.toml:3: \[spec\] extends: unknown spec"):
        load_spec(str(path))
    path = write(tmp_path, '[spec]\nname = "x"\nextends = "bad.toml"\n')
    with pytest.raises(SpecError, match="cycle"):
        load_spec(str(path))


def test_unknown_name_lists_builtins() -> None:
    with pytest.raises(SpecError) as info:
        load_spec("tensorflow")
    assert isinstance(info.value, UsageError)
    assert "'tensorflow'" in str(info.value)
    assert ", ".join(BUILTINS) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read spec file"):
        load_spec(str(tmp_path / "nope.toml"))


def test_import_does_not_import_torch() -> None:
    code = "import sys, bnconform.spec; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
