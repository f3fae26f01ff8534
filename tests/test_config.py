"""[tool.bnconform] / bnconform.toml: found like ruff finds its file, validated with file:line errors."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from bnconform.config import ConfigError, find_config, load_config

PYPROJECT = """\
[project]
name = "demo"

[tool.bnconform]
targets = ["torch.nn:BatchNorm2d", { target = "src/bn.py:BN", spec = "my.toml", init = { momentum = 0.2 }, ranks = [4]}]
fail-on = "warning"
output = "out"
formats = ["json", "md"]

[[tool.bnconform.waivers]]
code = "momentum-inverted"
reason = "legacy checkpoints"
target = "src/*"
expires = 2099-01-01
"""


def write(folder: Path, text: str, name: str = "pyproject.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_values_targets_and_waivers_are_read_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, PYPROJECT))
    first, second = config.targets
    assert first.target == "torch.nn:BatchNorm2d" and first.spec is None
    assert second.target == f"{tmp_path}/src/bn.py:BN" and second.spec == str(tmp_path / "my.toml")
    assert second.init == {"momentum": 0.2} and second.ranks == (4,)
    assert config.get("fail_on") == "warning" and config.get("output") == str(tmp_path / "out")
    assert config.get("formats") == ["json", "md"]
    (waiver,) = config.waivers
    assert (waiver.code, waiver.reason) == ("momentum-inverted", "legacy checkpoints")
    assert waiver.expires == dt.date(2099, 1, 1)
    assert waiver.source == "pyproject.toml:10"
    assert waiver.applies_to(second.target) and not waiver.applies_to(first.target)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('fail-on = "warning"', 'fail-on = "warn"',
         "pyproject.toml:6: [tool.bnconform] fail-on: 'warn' is not one of error, warning, info"),
        ('output = "out"', 'outptu = "out"', "pyproject.toml:7: [tool.bnconform] outptu: unknown key; valid keys:"),
        ('reason = "legacy checkpoints"', 'reason = " "',
         "pyproject.toml:12: [tool.bnconform.waivers] reason: a waiver needs a non-empty reason"),
        ('code = "momentum-inverted"', 'code = "momentum-inverse"',
         "pyproject.toml:11: [tool.bnconform.waivers] code: 'momentum-inverse' is not a finding code"),
        ("expires = 2099-01-01", 'expires = "next year"',
         "pyproject.toml:14: [tool.bnconform.waivers] expires: 'next year' is not a date (YYYY-MM-DD)"),
        ("ranks = [4]", "ranks = [1]", "pyproject.toml:5: [tool.bnconform] targets: entry 2: 'ranks' must be"),
        ('formats = ["json", "md"]', 'formats = ["pdf"]', "pyproject.toml:8: [tool.bnconform] formats: must be"),
        ('output = "out"', 'output = "out"\ntimeout = -1',
         "pyproject.toml:8: [tool.bnconform] timeout: must be a positive, finite number of seconds, got -1"),
        ('reason = "legacy checkpoints"\n', '',
         "pyproject.toml:10: [tool.bnconform.waivers] a waiver needs a non-empty reason (waiver of "
         "momentum-inverted: add reason"),
    ],
)
def test_a_bad_value_names_file_line_table_and_key(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in PYPROJECT
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, PYPROJECT.replace(old, new)))
    assert str(error.value).startswith(expected), str(error.value)
    assert "\n" not in str(error.value)


def test_standalone_file_uses_top_level_keys(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'targets = ["torch.nn:BatchNorm1d"]\nspec = "keras"\n', "bnconform.toml"))
    assert [t.target for t in config.targets] == ["torch.nn:BatchNorm1d"] and config.get("spec") == "keras"
    with pytest.raises(ConfigError, match=r"^bnconform.toml:1: spce: unknown key"):
        load_config(write(tmp_path, 'spce = "keras"\n', "bnconform.toml"))


def test_search_walks_up_to_the_repository_root_and_skips_foreign_pyprojects(tmp_path: Path) -> None:
    write(tmp_path, PYPROJECT)
    inner = tmp_path / "pkg" / "sub"
    inner.mkdir(parents=True)
    write(tmp_path / "pkg", "[project]\nname = 'x'\n")  # no [tool.bnconform]: skipped, as ruff does
    assert find_config(inner) == tmp_path / "pyproject.toml"
    (tmp_path / "pkg" / ".git").mkdir()  # a repository root stops the search
    assert find_config(inner) is None
    write(inner, 'targets = ["torch.nn:BatchNorm2d"]\n', "bnconform.toml")
    assert find_config(inner) == inner / "bnconform.toml"


def test_cli_reports_a_bad_configuration_on_one_line_with_exit_2(tmp_path: Path) -> None:
    write(tmp_path, PYPROJECT.replace('fail-on = "warning"', "fail-on = 3"))
    out = subprocess.run([sys.executable, "-m", "bnconform", "check"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    expected = "bnconform: error: pyproject.toml:6: [tool.bnconform] fail-on: 3 is not one of error, warning, info"
    assert out.stderr.strip() == expected


def test_a_broken_pyproject_with_our_table_is_an_error_when_found_by_search(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.bnconform]\ntargets = ["torch.nn:BatchNorm2d"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^pyproject.toml:\d+: TOML syntax error"):
        load_config()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = = "not ours"\n')
    assert load_config().path is None  # a broken foreign pyproject is not ours to judge


def test_a_bnconform_toml_beside_a_configured_pyproject_wins_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "bnconform.toml").write_text('targets = ["torch.nn:BatchNorm1d"]\n')
    monkeypatch.chdir(tmp_path)
    assert load_config().path == (tmp_path / "bnconform.toml").resolve()
    assert "the [tool.bnconform] table of pyproject.toml beside it is ignored" in capsys.readouterr().err
    assert load_config(tmp_path / "pyproject.toml").targets[0].target == "torch.nn:BatchNorm2d"
    assert capsys.readouterr().err == ""  # an explicit --config is a choice, not a surprise
