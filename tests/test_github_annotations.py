"""GitHub workflow annotations: escaped, pointing at the class definition, at most 10 per kind."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bnconform.render.github import definition_line, escape_data, escape_property, render

DATA = Path(__file__).parent / "data" / "sample_result_failing.json"


def sample(tmp_path: Path) -> dict[str, Any]:
    source = tmp_path / "pkg" / "bn.py"
    source.parent.mkdir()
    source.write_text("import torch\n\n\nclass Outer:\n    class BN(torch.nn.Module):\n        pass\n")
    data = json.loads(DATA.read_text())
    data["target"] = {**data["target"], "text": f"{source}:Outer.BN", "file": str(source)}
    return data


def test_each_error_and_warning_points_at_the_class_line_relative_to_the_workspace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    data = sample(tmp_path)
    lines = render(data).splitlines()
    active = [f for f in data["findings"] if not f["waived"] and f["severity"] in ("error", "warning")]
    assert len(lines) == len(active)
    first = lines[0]
    assert first.startswith("::error title=bnconform (") and ",file=pkg/bn.py,line=5::" in first
    assert all("\n" not in line and "\r" not in line for line in lines)


def test_escaping_follows_the_actions_toolkit() -> None:
    assert escape_data("50% a\r\nb") == "50%25 a%0D%0Ab"
    assert escape_property("mod:Name, x") == "mod%3AName%2C x"


def test_a_user_message_cannot_end_the_annotation_or_start_a_new_command(tmp_path: Path) -> None:
    data = sample(tmp_path)
    data["findings"][1]["message"] = "bad\n::error::injected"
    text = render(data)
    assert "\n::error::injected" not in text and "%0A::error::injected" in text


def test_at_most_ten_per_kind_then_one_notice(tmp_path: Path) -> None:
    data = sample(tmp_path)
    error = next(f for f in data["findings"] if f["severity"] == "error" and not f["waived"])
    data["findings"] = [dict(copy.deepcopy(error), message=f"m{i}", code=error["code"]) for i in range(13)]
    lines = render(data).splitlines()
    assert sum(line.startswith("::error") for line in lines) == 10
    assert lines[-1].startswith("::notice title=bnconform::3 more errors")


def test_unknown_location_leaves_file_and_line_out(tmp_path: Path) -> None:
    data = sample(tmp_path)
    data["target"] = {**data["target"], "text": "no.such.module:BN", "file": None}
    assert ",file=" not in render(data) and render(data)
    assert definition_line(tmp_path / "missing.py", "BN") is None


ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "bnconform" / "examples" / "tutorial.py"  # class BatchNorm at line 21, momentum inverted


def test_a_module_target_importable_only_from_the_working_directory_is_annotated_at_its_class(
        tmp_path: Path) -> None:
    """A console script has no cwd on sys.path; the worker imports `mynet` from the cwd, and the
    location comes from there, not from a second lookup in the supervisor that cannot find it."""
    import os
    import subprocess
    import sys

    package = tmp_path / "mynet"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_text(TUTORIAL.read_text())
    env = {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    # -P: no cwd on sys.path, as for the installed `bnconform` script
    args = [sys.executable, "-P", "-m", "bnconform", "check", "mynet.layers:BatchNorm", "--no-config",
            "--format", "json", "--output", str(tmp_path / "out")]
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    annotations = [line for line in done.stdout.splitlines() if line.startswith(("::error ", "::warning "))]
    assert annotations and all(",file=mynet/layers.py,line=21::" in line for line in annotations), annotations
    assert any(line.startswith("::error title=bnconform (momentum-inverted),file=mynet/layers.py,line=21::")
               for line in annotations)
    report = json.loads((tmp_path / "out" / "bnconform-report.json").read_text())
    assert report["target"]["file"] == str((package / "layers.py").resolve())


def test_the_worker_names_the_file_that_defines_the_targets_name(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from bnconform.supervise.worker import source_file
    from bnconform.target import load_target

    package = tmp_path / "aliasnet_7f3"
    package.mkdir()
    (package / "layers.py").write_text("import torch\n\n\nclass Norm(torch.nn.BatchNorm2d):\n    pass\n")
    (package / "__init__.py").write_text("from aliasnet_7f3 import layers\nfrom aliasnet_7f3.layers import Norm\n\n"
                                         "Alias = layers.Norm\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    layers, init = str((package / "layers.py").resolve()), str((package / "__init__.py").resolve())
    assert source_file(load_target("aliasnet_7f3:Norm")) == layers  # re-exported: where the class is
    assert source_file(load_target("aliasnet_7f3:Alias")) == init  # an alias: where the name is bound
    assert definition_line(Path(init), "Alias") == 4
