"""The pytest plugin never imports the user's code into the pytest process, not even to
collect: a bad target is one collection error; a target whose import ends the process is a
construct-failed item (as on the command line), and pytest goes on."""

from __future__ import annotations

import sys

import pytest

pytest_plugins = ["pytester"]


def test_a_target_that_exits_at_import_is_a_finding_not_a_dead_pytest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(exits_at_import="import os\nos._exit(0)\n")
    pytester.makepyprojecttoml('[tool.bnconform]\ntargets = ["exits_at_import:BatchNorm"]\n')
    pytester.makepyfile(test_unrelated="def test_one():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.stdout.fnmatch_lines(["*construct-failed*the process exited with code 0*"])
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 1 and outcomes["failed"] == 1 and outcomes.get("errors", 0) == 0
    assert "exits_at_import" not in sys.modules


def test_a_missing_target_is_one_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.bnconform]\ntargets = ["no_such_module_here:BatchNorm"]\n')
    pytester.makepyfile(test_unrelated="def test_one():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.stdout.fnmatch_lines(["bnconform: no_such_module_here:BatchNorm: module 'no_such_module_here' not found*"])
    result.assert_outcomes(errors=1)  # like any collection error, pytest stops before running
    assert "Traceback" not in result.stdout.str()


def test_a_waived_construct_failure_fails_its_item_as_the_cli_exits_1(pytester: pytest.Pytester) -> None:
    """One verdict everywhere: nothing verified behind a waiver is INCONCLUSIVE (exit 1), not a
    green session of skips and one xfail."""
    pytester.makepyfile(unbuildable="from torch import nn\n\nclass BN(nn.Module):\n"
                                    "    def __init__(self, num_features):\n        raise RuntimeError('nope')\n")
    pytester.makepyprojecttoml('[tool.bnconform]\ntargets = ["unbuildable:BN"]\n'
                               '[[tool.bnconform.waivers]]\ncode = "construct-failed"\nreason = "known"\n')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.stdout.fnmatch_lines(["*construct-failed is waived, but with it nothing could be verified*"])
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1 and outcomes.get("passed", 0) == 0 and "xfailed" not in outcomes
    assert result.ret == 1
