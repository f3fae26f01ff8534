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


SAMPLE_RESULT = Path(__file__).parent / "data" / "sample_result_failing.json"


def test_a_target_that_cannot_be_loaded_keeps_its_name_in_the_index_and_gets_no_link(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from bnconform import project

    def check_one(job: Job, max_time_s: float | None = None) -> dict:
        if job.target == "missing.mod:BN":
            raise UsageError("module 'missing' not found; is it installed or on PYTHONPATH?")
        return json.loads(SAMPLE_RESULT.read_text())  # 3 errors, 1 warning, 0 info, 1 waived

    monkeypatch.setattr(project, "check_one", check_one)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    out = tmp_path / "out"
    code = project.run_jobs(args("pkg.ok:BN", "missing.mod:BN", output=str(out), formats=["json"]),
                            load_config(None, search=False), plan(args("pkg.ok:BN", "missing.mod:BN"),
                                                                  load_config(None, search=False)),
                            lambda a, result, folder: 1)
    assert code == 2
    index = json.loads((out / "index.json").read_text())
    assert [(t["label"], t["verdict"], "folder" in t) for t in index["targets"]] == [
        ("pkg.ok:BN", "fail", True), ("missing.mod:BN", "error", False)]
    rows = (out / "index.md").read_text().splitlines()[-2:]
    assert rows[0] == ("| pkg.ok:BN | fail | 3 errors, 1 warning, 0 info, 1 waived "
                       "| [pkg.ok_BN](pkg.ok_BN/bnconform-report.md) |")
    assert rows[1] == "| missing.mod:BN | error | module 'missing' not found; is it installed or on PYTHONPATH? |  |"
    printed = capsys.readouterr().out
    assert "  fail   pkg.ok:BN " in printed and "3 errors, 1 warning, 0 info, 1 waived" in printed
    assert "  error  missing.mod:BN " in printed
    assert f"wrote index {out / 'index.md'}" in printed and f"wrote index {out / 'index.json'}" in printed


def test_the_index_lists_scans_module_paths_escaped_as_in_the_reports(tmp_path: Path) -> None:
    from bnconform.project import write_index

    entries = [{"target": "m:BN", "label": "m.BN(eps=0.1)", "verdict": "pass", "folder": "m.BN_eps_0.1",
                "counts": {"error": 0, "warning": 2, "info": 1, "waived": 0}, "modules": ["bn", "layer|1.<b>"]}]
    write_index(entries, tmp_path, [], echo=False)
    assert (tmp_path / "index.md").read_text().splitlines()[2:] == [
        "| target | modules | verdict | findings | report |", "| --- | --- | --- | --- | --- |",
        "| m.BN(eps=0.1) | bn, layer\\|1.&lt;b&gt; | pass | 0 errors, 2 warnings, 1 info, 0 waived "
        "| [m.BN_eps_0.1](m.BN_eps_0.1/bnconform-report.md) |"]
