"""Planning `bnconform check`: which targets, which options (CLI > file > default), which folders."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bnconform.config import load_config
from bnconform.errors import UsageError
from bnconform.project import DEFAULTS, Job, folders, plan, safe_name

CONFIG = """\
[tool.bnconform]
targets = ["pkg.layers:BN", { target = "pkg.layers:Frozen", spec = "frozen", init = { eps = 0.001 } }]
spec = "keras"
fail-on = "warning"

[[tool.bnconform.waivers]]
code = "batch-size-one"
reason = "never trained on one value per channel"
target = "pkg.layers:BN"
"""


def args(*targets: str, **flags: object) -> argparse.Namespace:
    values = {dest: None for dest in DEFAULTS} | {"target": list(targets)} | flags
    return argparse.Namespace(**values)


@pytest.fixture
def config(tmp_path: Path):
    path = tmp_path / "pyproject.toml"
    path.write_text(CONFIG)
    return load_config(path)


def test_no_target_checks_every_configured_one_with_its_own_settings(config) -> None:
    first, second = plan(args(), config)
    assert (first.target, first.options["spec"], first.options["fail_on"]) == ("pkg.layers:BN", "keras", "warning")
    assert first.options["ignore"] == ["batch-size-one"]
    assert (second.options["spec"], second.options["init"], second.options["ignore"]) == ("frozen", {"eps": 0.001}, [])


def test_command_line_flags_override_the_file(config) -> None:
    (job,) = plan(args("pkg.layers:Frozen", spec="pytorch", fail_on="error", init=["eps=0.01"]), config)
    assert (job.options["spec"], job.options["fail_on"], job.options["init"]) == ("pytorch", "error", {"eps": 0.01})
    (other,) = plan(args("torch.nn:BatchNorm2d", ignore=["momentum-default"]), config)
    assert other.options["spec"] == "keras" and other.options["ignore"] == ["momentum-default"]


def test_nothing_to_check_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no target given"):
        plan(args(), load_config(None, search=False))


def test_one_target_writes_into_the_output_folder_several_into_subfolders(tmp_path: Path) -> None:
    assert folders([Job("a:B", {})], tmp_path) == [tmp_path]
    assert folders([Job("pkg.mod:BN", {}), Job("/x/y/bn.py:BN", {}), Job("pkg.mod:BN", {})], tmp_path) == [
        tmp_path / "pkg.mod_BN", tmp_path / "bn.py_BN", tmp_path / "pkg.mod_BN-2"]
    assert safe_name("../evil:Name") == "evil_Name"
