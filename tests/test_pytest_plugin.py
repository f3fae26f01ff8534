"""The pytest plugin behaves like pytest: config file -> target -> check, re-runnable node ids,
one collection error for a bad target, JUnit names, reports, and nothing when not selected."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import xmlschema  # test extra: a missing one must fail, not skip

# In-process pytester runs restore sys.modules afterwards; torch cannot be imported twice in a
# process, so it (and the checks) are imported here, before any snapshot is taken.
import bnconform.api  # noqa: F401
import bnconform.registry

CODES = bnconform.registry.known_codes()
XSD = Path(__file__).parent / "data" / "junit-10.xsd"
ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = "bnconform.examples.tutorial:BatchNorm"

pytest_plugins = ["pytester"]


def project(pytester: pytest.Pytester, targets: str, extra: str = "") -> None:
    pytester.makepyprojecttoml(f"[tool.bnconform]\ntargets = {targets}\n{extra}")
    pytester.makepyfile(test_unrelated="def test_one():\n    assert True\n")


def test_collection_is_one_item_per_check_with_rerunnable_ids(pytester: pytest.Pytester) -> None:
    project(pytester, '["torch.nn:BatchNorm2d"]')
    result = pytester.runpytest_inprocess("--collect-only", "-q")
    ids = [line for line in result.stdout.lines if "::" in line]
    checks = [f"pyproject.toml::torch.nn:BatchNorm2d::{c}" for c in CODES]  # in registration order
    assert [i for i in ids if i.startswith("pyproject")] == checks and "test_unrelated.py::test_one" in ids
    assert len(ids) == len(CODES) + 1
    result.stdout.fnmatch_lines([f"{len(CODES) + 1} tests collected*"])


def test_ini_and_command_line_targets_join_the_configured_ones(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nbnconform_targets =\n    torch.nn:BatchNorm1d\n")
    pytester.makepyfile(test_unrelated="def test_one():\n    assert True\n")
    result = pytester.runpytest_inprocess("--collect-only", "-q", "--bnconform", "torch.nn:BatchNorm3d")
    ids = [line for line in result.stdout.lines if line.startswith("tox.ini::")]  # pytester's makeini file
    assert ids == [f"tox.ini::torch.nn:BatchNorm{d}::{c}" for d in ("3d", "1d") for c in CODES]


def test_the_config_file_is_collected_when_testpaths_leave_it_out(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n\n'
                               '[tool.bnconform]\ntargets = ["torch.nn:BatchNorm2d"]\n')
    pytester.mkdir("tests").joinpath("test_a.py").write_text("def test_a():\n    assert True\n")
    result = pytester.runpytest_inprocess("--collect-only", "-q")
    assert "tests/test_a.py::test_a" in result.stdout.lines
    assert "pyproject.toml::torch.nn:BatchNorm2d::momentum-inverted" in result.stdout.lines


def test_selecting_an_unrelated_test_runs_no_check(pytester: pytest.Pytester) -> None:
    project(pytester, '["torch.nn:BatchNorm2d"]')
    result = pytester.runpytest_inprocess("test_unrelated.py", "--bnconform", "torch.nn:BatchNorm1d")
    result.assert_outcomes(passed=1)


def test_a_bad_target_is_one_collection_error_on_one_line(pytester: pytest.Pytester) -> None:
    project(pytester, '["torch.nn:BatchNorm2e"]')
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(errors=1)  # pytest stops at collection errors, as for a broken test file
    errors = [line for line in result.stdout.lines if "bnconform: torch.nn:BatchNorm2e" in line]
    assert len(errors) == 1 and "has no attribute 'BatchNorm2e'; similar names: BatchNorm2d" in errors[0]
    assert "Traceback" not in result.stdout.str() and len(result.stdout.lines) < 30


def test_checks_run_verdicts_junit_reports_and_no_warnings(pytester: pytest.Pytester, tmp_path: Path) -> None:
    waiver = '[[tool.bnconform.waivers]]\ncode = "running-stats-shape"\nreason = "2-D inputs unused"\n'
    project(pytester, f'["{TUTORIAL}"]', waiver)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")  # a warning would become a failure
    junit, out = tmp_path / "junit.xml", tmp_path / "reports"
    result = pytester.runpytest_inprocess(f"--junitxml={junit}", f"--bnconform-output={out}", "-rfx")
    outcomes = result.parseoutcomes()
    failed = {m for m in re.findall(rf"FAILED pyproject.toml::{re.escape(TUTORIAL)}::([\w-]+)", result.stdout.str())}
    report = json.loads((out / "bnconform-report.json").read_text())
    # The CLI's rule: a check fails iff it has a non-waived finding at or above fail-on ("error").
    # A consequence (caused_by set) is xfailed under its failing cause, not a second failure.
    erring = {c["id"] for c in report["checks"] if any(f["severity"] == "error" and not f["waived"]
                                                       and not f.get("caused_by") for f in c["findings"])}
    assert failed == erring and {"momentum-inverted", "dtype-support"} <= failed
    assert outcomes["failed"] == len(failed)
    xfailed = [line for line in result.stdout.lines if line.startswith("XFAIL ")]
    assert outcomes["xfailed"] == len(xfailed) and "waived: running-stats-shape: 2-D inputs unused" in xfailed[0]
    # What the waived finding explains is waived with it, and says so.
    assert all("waived with its cause running-stats-shape: 2-D inputs unused" in line
               or "a consequence of" in line for line in xfailed[1:])
    # Below fail-on (warnings, info): reported in the summary, the items pass, no pytest warning.
    result.stdout.fnmatch_lines(["*findings below --bnconform-fail-on*", "*::num-batches-tracked: info:*"])
    assert "warnings" not in outcomes
    xmlschema.XMLSchema(str(XSD)).validate(str(junit))
    text = junit.read_text()
    assert f'classname="bnconform.{TUTORIAL}" name="momentum-inverted"' in text and 'classname=""' not in text
    # No `formats` configured: the four reports `bnconform check` writes by default.
    assert sorted(p.name for p in out.iterdir()) == [f"bnconform-report.{ext}" for ext in ("html", "json", "md", "xml")]


def test_bnconform_output_writes_the_formats_the_configuration_names(pytester: pytest.Pytester,
                                                                      tmp_path: Path) -> None:
    project(pytester, '["torch.nn:BatchNorm2d"]', 'formats = ["json", "md"]\n')
    out = tmp_path / "reports"
    outcomes = pytester.runpytest_inprocess("-q", f"--bnconform-output={out}").parseoutcomes()
    assert outcomes["passed"] > 20 and "failed" not in outcomes and "errors" not in outcomes
    assert sorted(p.name for p in out.iterdir()) == ["bnconform-report.json", "bnconform-report.md"]  # as the CLI


def test_a_collected_id_reruns_that_single_check(pytester: pytest.Pytester) -> None:
    project(pytester, f'["{TUTORIAL}"]')
    node = f"pyproject.toml::{TUTORIAL}::momentum-inverted"
    assert node in pytester.runpytest_inprocess("--collect-only", "-q").stdout.lines
    result = pytester.runpytest_inprocess(node, "-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Reproduce with:*"])


def test_a_file_targets_node_id_is_the_path_as_written_and_reruns(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Not the absolute path the config resolves it to: ids and JUnit classnames stay the same
    on every machine and checkout."""
    (pytester.path / "mynet").mkdir()
    (pytester.path / "mynet" / "layers.py").write_text((ROOT / "bnconform" / "examples" / "tutorial.py").read_text())
    project(pytester, '["mynet/layers.py:BatchNorm"]')
    node = "pyproject.toml::mynet/layers.py:BatchNorm::momentum-inverted"
    assert node in pytester.runpytest_inprocess("--collect-only", "-q").stdout.lines
    junit = tmp_path / "junit.xml"
    result = pytester.runpytest_inprocess(node, "-q", f"--junitxml={junit}")
    result.assert_outcomes(failed=1)
    assert 'classname="bnconform.mynet/layers.py:BatchNorm" name="momentum-inverted"' in junit.read_text()


def test_loading_the_plugin_imports_no_torch() -> None:
    code = "import sys, bnconform, bnconform.pytest_plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
