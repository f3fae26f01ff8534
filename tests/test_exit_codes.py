"""Exit codes 0/1/2/3/130 and the CLI's behaviour at the edges: a closed stdout, `--output -`,
a report or step summary that cannot be written, Ctrl-C, our own bug, hypothesis's files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bnconform import cli, console
from bnconform.cli import main

TUTORIAL = "bnconform.examples.tutorial:BatchNorm"
REPO = Path(__file__).resolve().parents[1]
SLEEPER = '''
import pathlib, time
import torch

class Sleeps2d(torch.nn.BatchNorm2d):
    """Every forward announces itself in a file, then sleeps: the test interrupts it."""

    def forward(self, x):
        pathlib.Path("in-forward").touch()
        time.sleep(60)
        return super().forward(x)
'''


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("BNCONFORM_DEBUG", raising=False)
    return tmp_path


def process(*argv: str, cwd: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(cwd / "cache")}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.Popen([sys.executable, "-m", "bnconform", *argv], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_zero_one_and_two(capsys) -> None:
    assert main(["check", "torch.nn:BatchNorm2d", "--format", "json", "-q"]) == 0
    assert capsys.readouterr().out == "bnconform PASS: torch.nn:BatchNorm2d vs spec pytorch\n"
    assert main(["check", TUTORIAL, "--format", "json", "-q"]) == 1
    assert main(["check", "no_such_module_xyz:BN"]) == 2
    assert capsys.readouterr().err.startswith("bnconform: error: ")


def test_three_is_our_bug_with_the_reporting_hint(capsys, monkeypatch) -> None:
    def broken(args) -> int:
        raise RuntimeError("renderer fell over")

    monkeypatch.setitem(cli.COMMANDS, "specs", broken)
    assert main(["specs"]) == 3
    err = capsys.readouterr().err
    assert err == f"bnconform: internal error: RuntimeError: renderer fell over\n{console.BUG_HINT}\n"
    assert "BNCONFORM_DEBUG=1" in console.BUG_HINT
    monkeypatch.setenv("BNCONFORM_DEBUG", "1")
    with pytest.raises(RuntimeError, match="renderer fell over"):
        main(["specs"])


def test_closed_stdout_ends_quietly_with_the_verdicts_code(in_tmp) -> None:
    child = process("check", TUTORIAL, "-v", "--format", "json", cwd=in_tmp)
    child.stdout.close()  # the reader is gone before the first line (`| head -0`)
    child.wait(timeout=300)
    err = child.stderr.read()
    assert child.returncode == 1, err
    assert "Traceback" not in err and "internal error" not in err and "Exception ignored" not in err
    assert (in_tmp / "reports" / "bnconform-report.json").exists()  # reports come before printing


def test_ctrl_c_is_130(in_tmp) -> None:
    (in_tmp / "sleeper.py").write_text(SLEEPER)
    # As from a terminal: a test run started in the background (`cmd &`, nohup) ignores SIGINT,
    # and a child inherits that, so Ctrl-C would never reach it.
    child = process("check", "sleeper.py:Sleeps2d", "--timeout", "120", cwd=in_tmp,
                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not (in_tmp / "in-forward").exists():
            assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:  # failed above: leave no process for the tests after this one
            child.kill()
            child.communicate()
    assert child.returncode == 130, err
    assert err.strip().splitlines()[-1] == "bnconform: interrupted"
    assert "Traceback" not in err


def test_output_dash_is_json_on_stdout_and_the_summary_on_stderr(capsys, in_tmp) -> None:
    assert main(["check", TUTORIAL, "--output", "-"]) == 1
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["summary"]["verdict"] == "fail"
    assert captured.err.startswith("bnconform FAIL: ")
    assert not (in_tmp / "reports").exists() and not (in_tmp / "-").exists()
    assert main(["check", TUTORIAL, "--output", "-", "--format", "md"]) == 2


def test_an_unwritable_report_is_a_warning_and_the_verdict_still_comes_out(capsys, in_tmp) -> None:
    (in_tmp / "reports").mkdir()
    (in_tmp / "reports" / "bnconform-report.md").mkdir()  # a directory where the report goes
    summary = in_tmp / "not-yet" / "summary.md"  # passes the up-front check, then cannot be opened
    os.environ["GITHUB_STEP_SUMMARY"] = str(summary)
    try:
        code = main(["check", TUTORIAL, "--format", "json,md"])
    finally:
        del os.environ["GITHUB_STEP_SUMMARY"]
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.startswith("bnconform FAIL: ")
    warnings = [line for line in captured.err.splitlines() if line.startswith("bnconform: warning: could not write")]
    assert any("reports/bnconform-report.md: Is a directory" in line for line in warnings), captured.err
    assert any(str(summary) in line for line in warnings), captured.err
    assert (in_tmp / "reports" / "bnconform-report.json").exists()
    assert "wrote json" in captured.out and "wrote md" not in captured.out


def test_no_hypothesis_folder_in_the_users_directory(in_tmp) -> None:
    (in_tmp / "my_bn.py").write_text("import torch\n\nclass BN(torch.nn.BatchNorm2d):\n    pass\n")
    child = process("check", "my_bn.py:BN", "--format", "json", cwd=in_tmp)
    _, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    assert not (in_tmp / ".hypothesis").exists()
