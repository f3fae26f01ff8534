"""The pytest plugin under real pytest-xdist (issue 10, item 5): a target's checks run on one
worker and the target is checked once, with `--dist loadgroup` and with plain `-n` (the plugin
schedules by target in both: xdist's own loadgroup no longer groups on pytest 9.2); outcomes,
JUnit names and `--bnconform-output` reports are those of the run without xdist and of the CLI.

The sample project is run with its momentum flipped, so the runs have a failure, a consequence
and a waiver (xfail), skips and a finding below fail-on, not only passes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import junitparser  # test extra: a missing one must fail, not skip
import pytest
import xdist  # noqa: F401 - the runs below use -n

from bnconform.plugin_results import check_nodeid
from tests.test_sample_project import FLIP, SAMPLE, edit

TARGETS = ("tinynet.layers:BatchNorm2d", "tinynet.layers:FrozenBatchNorm2d")
FLIP_VAR = ("self.running_var.mul_(1 - m).add_(m * var", "self.running_var.mul_(m).add_((1 - m) * var")
# Every call of the one function that checks a target, with the process it ran in.
COUNTER = """import os

import bnconform.project as _project

_check_one = _project.check_one


def _counted(job, *args, **kwargs):
    with open(os.path.join(os.path.dirname(__file__), "checked.log"), "a") as log:
        log.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} {job.target}\\n")
    return _check_one(job, *args, **kwargs)


_project.check_one = _counted
"""
MODES = {"serial": (), "load": ("-n", "2"), "loadgroup": ("-n", "2", "--dist", "loadgroup")}
VOLATILE = {"created", "duration_s"}  # the report's date and the checks' timings


@dataclass
class Run:
    project: Path
    done: subprocess.CompletedProcess[str]

    @property
    def out(self) -> Path:
        return self.project / "out"

    def workers(self) -> dict[str, set[str]]:
        """target -> the xdist workers its items ran on (from `-v`: `[gw0] [ 5%] PASSED <nodeid>`)."""
        found: dict[str, set[str]] = {}
        for worker, nodeid in re.findall(r"^\[(gw\d+)\] \[ *\d+%\] [A-Z]+ (\S+)", self.done.stdout, re.M):
            found.setdefault(nodeid.split("::")[1], set()).add(worker)
        return found

    def checked(self) -> list[tuple[str, str]]:
        """(process, target) of every check_one call."""
        log = self.project / "checked.log"
        return [tuple(line.split(" ", 1)) for line in log.read_text().splitlines()] if log.exists() else []

    def outcomes(self) -> dict[tuple[str, str], tuple[str, str]]:
        """(classname, name) -> (outcome, message) from --junitxml."""
        cases: dict[tuple[str, str], tuple[str, str]] = {}
        for suite in junitparser.JUnitXml.fromfile(str(self.project / "junit.xml")):
            for case in suite:
                kinds = [(type(r).__name__.lower(), r.message or "") for r in case.result]
                cases[(case.classname, case.name)] = kinds[0] if kinds else ("passed", "")
        return cases

    def summary(self) -> tuple[str, list[str]]:
        """The counts line (without its time) and the lines of the below-fail-on section."""
        counts = re.findall(r"^=+ (\d+ failed.*) in [\d.]+s", self.done.stdout, re.M)
        below = [line for line in self.done.stdout.splitlines() if re.match(r"pyproject\.toml::\S+: (warning|info):",
                                                                            line)]
        return counts[-1], below


def _copy(root: Path, name: str) -> Path:
    project = root / name
    shutil.copytree(SAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "bnconform-reports"))
    edit(project, *FLIP)
    edit(project, *FLIP_VAR)
    # Every format, so both the plugin's and the CLI's runs write all four reports from the same
    # `formats` (the sample project configures json and md only; the plugin honours it too).
    config, configured = project / "pyproject.toml", 'formats = ["json", "md"]'
    assert configured in config.read_text()
    config.write_text(config.read_text().replace(configured, 'formats = ["json", "md", "html", "junit"]'))
    (project / "conftest.py").write_text(COUNTER)
    return project


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST_", "PYTEST_ADDOPTS"))}
    env.pop("GITHUB_ACTIONS", None)
    env["PYTHONPATH"] = str(project)
    return subprocess.run([sys.executable, *args], cwd=project, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The sample project run once per mode (lazily, shared by the tests of this module)."""
    root, done = tmp_path_factory.mktemp("xdist"), {}

    def get(mode: str) -> Run:
        if mode not in done:
            project = _copy(root, mode)
            if mode == "cli":
                args = ("-m", "bnconform", "check", "--output", "out")  # formats from pyproject.toml, as pytest
            else:
                args = ("-m", "pytest", "-p", "no:cacheprovider", "-v", "-rfx", "--junitxml=junit.xml",
                        "--bnconform-output=out", *MODES[mode])
            done[mode] = Run(project, _run(project, *args))
            assert done[mode].done.returncode == 1, done[mode].done.stdout[-3000:] + done[mode].done.stderr[-3000:]
        return done[mode]

    return get


@pytest.mark.parametrize("mode", ["loadgroup", "load"])
def test_a_targets_checks_run_on_one_worker_and_the_target_is_checked_once(runs: Any, mode: str) -> None:
    run = runs(mode)
    workers = run.workers()
    assert set(workers) == set(TARGETS), run.done.stdout[-3000:]
    assert all(len(used) == 1 for used in workers.values()), workers
    # Two targets, two workers: the targets are spread, not all sent to one worker.
    assert len(set.union(*workers.values())) == 2, workers
    # One check_one call per target in the whole run, made on the worker its items ran on.
    assert Counter(target for _, target in run.checked()) == Counter(TARGETS), run.checked()
    assert {target: {worker} for worker, target in run.checked()} == workers


def test_without_xdist_each_target_is_checked_once_in_the_pytest_process(runs: Any) -> None:
    assert sorted(runs("serial").checked()) == [("main", t) for t in TARGETS]


@pytest.mark.parametrize("mode", ["loadgroup", "load"])
def test_outcomes_junit_names_and_summary_equal_the_run_without_xdist(runs: Any, mode: str) -> None:
    serial, distributed = runs("serial"), runs(mode)
    expected = serial.outcomes()
    kinds = Counter(kind for kind, _ in expected.values())
    assert kinds["failure"] == 1 and kinds["skipped"] > 2 and kinds["passed"] > 50  # 2 xfails are skipped too
    assert ("bnconform.tinynet.layers:BatchNorm2d", "momentum-inverted") in expected  # JUnit names: no @group
    assert distributed.outcomes() == expected
    counts, below = serial.summary()
    assert counts.startswith("1 failed, ") and "2 xfailed" in counts and below  # the run has something below fail-on
    assert distributed.summary() == (counts, below)  # the workers' below-fail-on findings reach the summary


def _normalized(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _junit_cases(path: Path) -> list[tuple[str, str, list[tuple[str, str]]]]:
    xml = junitparser.JUnitXml.fromfile(str(path))  # bnconform's own: one <testsuite> root
    suites = [xml] if isinstance(xml, junitparser.TestSuite) else list(xml)
    return [(case.classname, case.name, [(type(r).__name__, r.message or "") for r in case.result])
            for suite in suites for case in suite]


@pytest.mark.parametrize("mode", ["loadgroup", "load", "cli"])
def test_bnconform_output_writes_the_reports_of_the_run_without_xdist(runs: Any, mode: str) -> None:
    """Serial plugin run vs the xdist runs and `bnconform check`, all with the configured formats."""
    serial, other = runs("serial"), runs(mode)
    folders = ("tinynet.layers_BatchNorm2d", "tinynet.layers_FrozenBatchNorm2d")
    files = {"index.json", "index.md",
             *(f"{folder}/bnconform-report.{ext}" for folder in folders for ext in ("json", "md", "html", "xml"))}
    for out in (serial.out, other.out):
        assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == files
    assert (other.out / "index.md").read_text() == (serial.out / "index.md").read_text()
    index = json.loads((serial.out / "index.json").read_text())
    assert [(t["target"], t["verdict"]) for t in index["targets"]] == [(TARGETS[0], "fail"), (TARGETS[1], "pass")]
    assert json.loads((other.out / "index.json").read_text()) == index
    for folder in folders:
        mine, theirs = serial.out / folder, other.out / folder
        report = json.loads((mine / "bnconform-report.json").read_text())
        assert report["settings"]["config"] == str(serial.project / "pyproject.toml")  # as the CLI says
        other_report = json.loads((theirs / "bnconform-report.json").read_text())
        other_report["settings"]["config"] = report["settings"]["config"]  # the other copy's path
        # where the worker found the class: the same file in each copy
        assert report["target"]["file"] == str((serial.project / "tinynet" / "layers.py").resolve())
        assert other_report["target"]["file"] == str((other.project / "tinynet" / "layers.py").resolve())
        other_report["target"]["file"] = report["target"]["file"]
        assert _normalized(other_report) == _normalized(report)
        undated = [[line for line in (where / "bnconform-report.md").read_text().splitlines() if "**Date**" not in line]
                   for where in (mine, theirs)]
        assert undated[0] == undated[1]
        assert _junit_cases(theirs / "bnconform-report.xml") == _junit_cases(mine / "bnconform-report.xml")
        assert (theirs / "bnconform-report.html").stat().st_size > 1000


def test_check_nodeid_reads_the_target_with_or_without_xdists_group_suffix() -> None:
    target = "tinynet.layers:BatchNorm2d"
    assert check_nodeid(f"pyproject.toml::{target}::momentum-inverted", "pyproject.toml") == (
        "pyproject.toml", target, "momentum-inverted")
    # pytest before 9.2 with --dist loadgroup: xdist appends "@<group>" on the workers.
    assert check_nodeid(f"sub/pyproject.toml::{target}::momentum-inverted@{target}", "pyproject.toml") == (
        "sub/pyproject.toml", target, "momentum-inverted")
    assert check_nodeid("tests/test_a.py::test_a", "pyproject.toml") is None
    assert check_nodeid("tests/test_a.py::TestA::test_a", "pyproject.toml") is None
