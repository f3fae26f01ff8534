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
