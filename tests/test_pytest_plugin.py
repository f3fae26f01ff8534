"""The pytest plugin: one test item per check, failures carry the finding and its repro."""

from __future__ import annotations

import subprocess
import sys

import pytest

# In-process pytester runs restore sys.modules afterwards; torch cannot be imported twice in a
# process, so it (and the checks) are imported here, before any snapshot is taken.
import bnconform.api  # noqa: F401
import bnconform.registry

bnconform.registry.all_checks()

pytest_plugins = ["pytester"]


def test_tutorial_checks_fail_as_test_items(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(
        "--bnconform", "bnconform.examples.tutorial:BatchNorm", "--bnconform-fail-on", "warning", "-q", "-rf"
    )
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] >= 4 and outcomes["passed"] >= 10
    result.stdout.fnmatch_lines(["*bnconform momentum-inverted*", "*Reproduce with:*"])
    for code in ("momentum-inverted", "running-stats-shape", "running-var-estimator", "input-rank-unsupported"):
        assert f"bnconform[bnconform.examples.tutorial:BatchNorm]::{code}" in result.stdout.str()


def test_torch_batchnorm_passes_and_waivers_skip(pytester: pytest.Pytester) -> None:
    clean = pytester.runpytest_inprocess("--bnconform", "torch.nn:BatchNorm2d", "-q")
    assert clean.ret == 0 and "failed" not in clean.parseoutcomes()
    waived = pytester.runpytest_inprocess(
        "--bnconform", "bnconform.examples.tutorial:BatchNorm", "--bnconform-ignore", "momentum-inverted", "-rs"
    )
    waived.stdout.fnmatch_lines(["*waived: momentum-inverted*"])


def test_fail_on_controls_which_severities_fail(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(
        "--bnconform", "bnconform.examples.tutorial:BatchNorm", "--bnconform-fail-on", "error", "-q", "-rf"
    )
    text = result.stdout.str()
    assert "FAILED" in text and "::num-batches-tracked" not in text.split("short test summary")[-1]
    assert "BnconformWarning" in text  # the info finding is shown as a warning instead


def test_without_the_option_no_items_and_no_torch() -> None:
    code = "import sys, bnconform.pytest_plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
