"""Writing report files, the GitHub step summary, and lazy imports of heavy renderers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bnconform.errors import UsageError
from bnconform.render import FORMATS, append_github_summary, write_reports
from bnconform.render import json as json_render

DATA = Path(__file__).parent / "data"


def sample(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"sample_result_{name}.json").read_text())


def test_formats_table() -> None:
    assert {k: v[1] for k, v in FORMATS.items()} == {
        "json": "bnconform-report.json", "md": "bnconform-report.md",
        "html": "bnconform-report.html", "junit": "bnconform-report.xml"}


def test_write_all_formats(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "nested"
    written = write_reports(sample("failing"), out, ["json", "md", "html", "junit", "json"])
    assert list(written) == ["json", "md", "html", "junit"]
    assert sorted(p.name for p in out.iterdir()) == sorted(v[1] for v in FORMATS.values())
    assert json_render.load(written["json"]) == sample("failing")
    assert written["html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert written["junit"].read_text(encoding="utf-8").startswith("<?xml")


def test_unknown_format_names_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown report format 'pdf'; valid formats: json, md"):
        write_reports(sample("clean"), tmp_path, ["json", "pdf"])
    assert not list(tmp_path.iterdir())


def test_github_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert append_github_summary(sample("clean")) is None
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert append_github_summary(sample("failing")) == summary
    text = summary.read_text()
    assert text.startswith("earlier step\n# ❌ bnconform: FAIL")


def test_json_only_does_not_import_heavy_modules(tmp_path: Path) -> None:
    code = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from bnconform.render import write_reports\n"
        f"r = json.loads(Path({str(DATA / 'sample_result_failing.json')!r}).read_text())\n"
        f"write_reports(r, Path({str(tmp_path)!r}), ['json'])\n"
        "heavy = [m for m in ('matplotlib', 'tabulate', 'torch') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent.parent)
    assert out.stdout.strip() == "[]"


def test_html_without_plots_does_not_import_matplotlib() -> None:
    code = (
        "import sys, json\n"
        "from bnconform.render import html\n"
        "html.render({'schema': 'bnconform.result/1'})\n"
        "print('matplotlib' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent.parent)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("fmt", [*FORMATS, "terminal"])
def test_minimal_result_renders_in_every_format(fmt: str) -> None:
    from bnconform.render import terminal

    render = terminal.render if fmt == "terminal" else FORMATS[fmt][0]
    minimal = {"schema": "bnconform.result/1", "checks": [{"id": "x", "status": "weird"}],
               "findings": [{"code": "y", "severity": "fatal"}], "summary": None}
    assert render(minimal)
