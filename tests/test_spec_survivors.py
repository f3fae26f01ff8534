"""Spec loading at its edges: boundaries that load, values just past them that are refused,
and the file:line each refusal points at (mutation survivors of bnconform/spec_file.py).

Every refusal is checked as the whole one-line message a user sees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import bnconform
from bnconform import spec_file
from bnconform.errors import SpecError
from bnconform.spec import Spec, builtin_spec_names, load_spec

HEAD = '[spec]\nextends = "pytorch"\nname = "edge"\n\n'  # lines 1-4: a body's header is line 5
BUILTINS = ["flax", "frozen", "keras", "mxnet", "onnx", "paddle", "pytorch", "tf-fused"]
AXES = "reduction_axes = { 2 = [0], 3 = [0, 2], 4 = [0, 2, 3], 5 = [0, 2, 3, 4] }\n"
MISMATCH = "rank 5 has reduction_axes but ranks = [2, 3, 4]; ranks and the keys of reduction_axes must match"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def spec(tmp_path: Path, body: str, name: str = "edge.toml") -> Path:
    return write(tmp_path / name, HEAD + body)


def refusal(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(str(path))
    return str(info.value)


def loads(path: Path) -> Spec:
    return load_spec(str(path))


# -- numbers: bounds that load and values just past them -----------------------------------------


def test_momentum_default_loads_at_0_and_1_and_is_refused_just_outside(tmp_path: Path) -> None:
    for value in ("0.0", "1.0"):
        path = spec(tmp_path, f"[running_stats]\nmomentum_default = {value}\n")
        assert loads(path).momentum_default == float(value)
    path = spec(tmp_path, "[running_stats]\nmomentum_default = -0.1\n")
    assert refusal(path) == f"{path}:6: [running_stats] momentum_default: -0.1 is out of range; must be >= 0.0"
    path = spec(tmp_path, "[running_stats]\nmomentum_default = 1.5\n")
    assert refusal(path) == (f"{path}:6: [running_stats] momentum_default: 1.5 is out of range; "
                             "must be >= 0.0 and <= 1.0")


def test_eps_zero_and_negative_are_refused_as_not_above_zero(tmp_path: Path) -> None:
    for value in ("0.0", "-0.5"):
        path = spec(tmp_path, f"[normalization]\neps = {value}\n")
        assert refusal(path) == f"{path}:6: [normalization] eps: {value} is out of range; must be > 0.0"


def test_running_var_init_loads_at_0_and_0_5_and_is_refused_below(tmp_path: Path) -> None:
    for value in ("0.0", "0.5"):
        assert loads(spec(tmp_path, f"[running_stats]\nvar_init = {value}\n")).running_var_init == float(value)
    path = spec(tmp_path, "[running_stats]\nvar_init = -0.5\n")
    assert refusal(path) == f"{path}:6: [running_stats] var_init: -0.5 is out of range; must be >= 0.0"


def test_tolerances_load_at_zero_and_are_refused_below(tmp_path: Path) -> None:
    path = spec(tmp_path, "[tolerance.float32]\nrtol = 0.0\natol = 0.0\n")
    tolerance = loads(path).tolerance("float32")
    assert (tolerance.rtol, tolerance.atol) == (0.0, 0.0)
    path = spec(tmp_path, "[tolerance.float32]\nrtol = -1e-6\natol = 0.0\n")
    assert refusal(path) == f"{path}:6: [tolerance.float32] rtol: -1e-06 is out of range; must be >= 0.0"
    path = spec(tmp_path, "[tolerance.float32]\nrtol = 0.0\natol = -1e-6\n")
    assert refusal(path) == f"{path}:7: [tolerance.float32] atol: -1e-06 is out of range; must be >= 0.0"


def test_a_boolean_channel_axis_is_not_the_integer_1(tmp_path: Path) -> None:
    path = spec(tmp_path, "[layout]\nchannel_axis = true\n")
    assert refusal(path) == f"{path}:6: [layout] channel_axis: expected an integer, got boolean True"


# -- ranks and reduction axes --------------------------------------------------------------------


def test_rank_5_loads_and_rank_6_is_refused(tmp_path: Path) -> None:
    path = spec(tmp_path, "[layout]\nranks = [5]\nreduction_axes = { 5 = [0, 2, 3, 4] }\n")
    assert loads(path).ranks == (5,)
    path = spec(tmp_path, "[layout]\nranks = [2, 6]\nreduction_axes = { 2 = [0], 6 = [0, 2, 3, 4, 5] }\n")
    assert refusal(path) == f"{path}:6: [layout] ranks: rank 6 is not supported; bnconform checks ranks 2 to 5"


def test_a_spec_of_ranks_2_and_3_only_loads(tmp_path: Path) -> None:
    path = spec(tmp_path, "[layout]\nranks = [2, 3]\nreduction_axes = { 2 = [0], 3 = [0, 2] }\n")
    spec_ = loads(path)
    assert (spec_.ranks, dict(spec_.reduction_axes)) == ((2, 3), {2: (0,), 3: (0, 2)})


def test_rank_1_is_refused_as_below_2(tmp_path: Path) -> None:
    path = spec(tmp_path, "[layout]\nranks = [1, 2]\nreduction_axes = { 1 = [0], 2 = [0] }\n")
    assert refusal(path) == (f"{path}:6: [layout] ranks: [1, 2]: need at least one rank, "
                             "each >= 2 (batch and channel axes)")


def test_an_empty_ranks_array_is_refused(tmp_path: Path) -> None:
    path = spec(tmp_path, "[layout]\nranks = []\nreduction_axes = {}\n")
    assert refusal(path) == (f"{path}:6: [layout] ranks: []: need at least one rank, "
                             "each >= 2 (batch and channel axes)")


def test_duplicate_ranks_and_duplicate_axes_are_refused(tmp_path: Path) -> None:
    path = spec(tmp_path, "[layout]\nranks = [2, 2, 3, 4, 5]\n")
    assert refusal(path) == f"{path}:6: [layout] ranks: ranks: [2, 2, 3, 4, 5] has duplicates"
    path = spec(tmp_path, "[layout]\nreduction_axes = { 2 = [0], 3 = [0, 2], 4 = [0, 2, 2, 3], 5 = [0, 2, 3, 4] }\n")
    assert refusal(path) == f"{path}:6: [layout] reduction_axes: rank 4: [0, 2, 2, 3] has duplicates"


def test_hundreds_of_distinct_ranks_are_refused_as_unsupported_not_as_duplicates(tmp_path: Path) -> None:
    ranks = list(range(2, 302))  # lengths above 256 are distinct int objects in CPython
    path = spec(tmp_path, f"[layout]\nranks = {ranks}\n")
    assert refusal(path) == f"{path}:6: [layout] ranks: rank 301 is not supported; bnconform checks ranks 2 to 5"


def test_a_negative_reduction_axis_is_refused(tmp_path: Path) -> None:
    path = spec(tmp_path, "[layout]\nreduction_axes = { 2 = [0, -1], 3 = [0, 2], 4 = [0, 2, 3], 5 = [0, 2, 3, 4] }\n")
    assert refusal(path) == f"{path}:6: [layout] reduction_axes: rank 2: axes must be non-negative, got [0, -1]"


def test_reduction_axes_for_a_rank_not_in_ranks_are_refused(tmp_path: Path) -> None:
    path = spec(tmp_path, "[layout]\nranks = [2, 3, 4]\n" + AXES)
    assert refusal(path) == f"{path}:7: [layout] reduction_axes: {MISMATCH}"


def test_an_axis_past_the_rank_is_refused(tmp_path: Path) -> None:
    path = spec(tmp_path, "[layout]\nreduction_axes = { 2 = [0], 3 = [0, 2], 4 = [0, 2, 5], 5 = [0, 2, 3, 4] }\n")
    assert refusal(path) == f"{path}:6: [layout] reduction_axes: rank 4: axis 5 is outside a rank-4 input"


def test_channels_last_clash_names_the_non_negative_channel_axis(tmp_path: Path) -> None:
    path = spec(tmp_path, "[layout]\nchannel_axis = -1\n")
    assert refusal(path) == (f"{path}:6: [layout] channel_axis: rank 3: reduction axis 2 is the channel axis "
                             "(channel_axis = -1); statistics are per channel")


# -- which file and key a conflict is blamed on --------------------------------------------------


def test_a_layout_clash_is_blamed_on_the_key_the_loaded_file_sets(tmp_path: Path) -> None:
    # The parent's path sorts before the child's: blame follows the file, not the name order.
    write(tmp_path / "a_base.toml", '[spec]\nextends = "pytorch"\nname = "base"\n\n[layout]\n' + AXES)
    child = write(tmp_path / "m_child.toml", '[spec]\nextends = "a_base.toml"\nname = "child"\n\n'
                  "[layout]\nranks = [2, 3, 4]\n")
    assert refusal(child) == f"{child}:6: [layout] ranks: {MISMATCH}"


def test_a_layout_clash_set_by_two_ancestors_is_blamed_on_reduction_axes_where_they_are_set(
        tmp_path: Path) -> None:
    grand = write(tmp_path / "grand.toml", '[spec]\nextends = "pytorch"\nname = "grand"\n\n'
                  "# reduction axes for ranks 2 to 5\n[layout]\n" + AXES)
    write(tmp_path / "parent.toml", '[spec]\nextends = "grand.toml"\nname = "parent"\n\n'
          "[layout]\nranks = [2, 3, 4]\n")
    child = write(tmp_path / "child.toml", '[spec]\nextends = "parent.toml"\nname = "child"\n')
    assert refusal(child) == f"{grand}:7: [layout] reduction_axes: {MISMATCH}"


def test_track_false_with_eval_on_the_batch_loads(tmp_path: Path) -> None:
    path = spec(tmp_path, '[running_stats]\ntrack = false\n\n[eval]\nuses = "batch"\n')
    spec_ = loads(path)
    assert (spec_.track_running_stats, spec_.eval_uses) == (False, "batch")


def test_track_false_and_eval_running_in_one_file_is_blamed_on_eval_uses(tmp_path: Path) -> None:
    path = spec(tmp_path, '[running_stats]\ntrack = false\n\n[eval]\nuses = "running"\n')
    assert refusal(path) == f"{path}:9: [eval] uses: 'running' needs [running_stats] track = true"


def test_track_false_in_the_loaded_file_is_blamed_on_track(tmp_path: Path) -> None:
    for parent in ("a_base.toml", "z_base.toml"):  # sorting before and after the child
        write(tmp_path / parent, '[spec]\nextends = "pytorch"\nname = "base"\n\n[eval]\nuses = "running"\n')
        child = write(tmp_path / "m_child.toml", f'[spec]\nextends = "{parent}"\nname = "child"\n\n'
                      "[running_stats]\ntrack = false\n")
        assert refusal(child) == (f"{child}:6: [running_stats] track: false needs [eval] uses = 'batch' "
                                  "(no running statistics to use)")


def test_track_false_and_eval_running_both_inherited_are_blamed_on_the_parent(tmp_path: Path) -> None:
    for parent in ("a_base.toml", "z_base.toml"):  # sorting before and after the child
        base = write(tmp_path / parent, '[spec]\nextends = "pytorch"\nname = "base"\n\n'
                     '[running_stats]\ntrack = false\n\n[eval]\nuses = "running"\n')
        child = write(tmp_path / "m_child.toml", f'[spec]\nextends = "{parent}"\nname = "child"\n')
        assert refusal(child) == f"{base}:9: [eval] uses: 'running' needs [running_stats] track = true"


# -- the line an error points at -----------------------------------------------------------------


def test_a_table_missing_from_the_file_is_reported_at_line_1(tmp_path: Path) -> None:
    path = write(tmp_path / "short.toml", '# only the [spec] table\n\n[spec]\nname = "short"\n'
                 'description = "d"\nsource = "s"\n')
    assert refusal(path) == f"{path}:1: [layout] channel_axis: required key is missing"


def test_a_header_lookalike_inside_a_string_does_not_move_a_missing_table_off_line_1(tmp_path: Path) -> None:
    path = write(tmp_path / "short.toml", '[spec]\nname = "short"\ndescription = """\n[""]\n"""\nsource = "s"\n')
    assert refusal(path) == f"{path}:1: [layout] channel_axis: required key is missing"


def test_a_tolerance_given_as_an_inline_table_is_blamed_on_its_line(tmp_path: Path) -> None:
    path = spec(tmp_path, "[tolerance]\nfloat32 = { rtol = -1.0, atol = 1e-5 }\n")
    assert refusal(path) == f"{path}:6: [tolerance.float32] rtol: -1.0 is out of range; must be >= 0.0"


def test_a_missing_key_points_at_its_table_not_at_a_same_named_key_of_a_later_table(tmp_path: Path) -> None:
    pytorch = Path(load_spec("pytorch").path).read_text(encoding="utf-8")
    assert pytorch.count('uses = "running"') == 1
    write(tmp_path / "base.toml", pytorch.replace('uses = "running"', ""))
    filler = "".join(f"# note {i}\n" for i in range(6))
    child = write(tmp_path / "child.toml", '[spec]\nextends = "base.toml"\nname = "child"\n' + filler
                  + '[eval]\nupdates_running_stats = false\n\n[training]\nuses = "batch"\n')
    assert child.read_text().splitlines()[9] == "[eval]"
    assert refusal(child) == f"{child}:10: [eval] uses: required key is missing"


def test_a_syntax_error_at_the_end_of_a_one_line_file_is_on_line_1(tmp_path: Path) -> None:
    path = write(tmp_path / "cut.toml", "[spec")
    assert refusal(path) == (f"{path}:1: TOML syntax error: Expected ']' at the end of a table declaration "
                             "(at end of document)")


def test_a_non_string_extends_is_refused_on_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "ext.toml", '[spec]\nname = "x"\nextends = 5\n')
    assert refusal(path) == f"{path}:3: [spec] extends: expected a string, got integer 5"


# -- finding spec files --------------------------------------------------------------------------


def test_the_source_checkouts_specs_folder_is_found_when_the_package_is_not_installed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec_file, "BUILTIN_PACKAGE", "bnconform.no_such_builtin_specs")
    specs = Path(bnconform.__file__).resolve().parent.parent / "specs"
    assert builtin_spec_names() == BUILTINS
    assert load_spec("pytorch").path == str(specs / "pytorch.toml")


def test_a_forward_slash_path_without_toml_suffix_is_a_path_where_the_separator_is_a_backslash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "mine", HEAD)
    monkeypatch.setattr(os, "sep", "\\")  # as on Windows, where "/" also separates folders
    assert loads(path).name == "edge"


# -- optional keys ---------------------------------------------------------------------------------


def test_optional_keys_left_out_keep_defaults_and_given_ones_are_kept(tmp_path: Path) -> None:
    plain = loads(spec(tmp_path, ""))
    assert (plain.train_uses, plain.affine_trainable) == ("batch", True)
    frozen = loads(spec(tmp_path, '[training]\nuses = "running"\n\n[affine]\ntrainable = false\n'))
    assert (frozen.train_uses, frozen.affine_trainable) == ("running", False)
