"""Hostile classes cannot end, hang or fool a check: each gives a report, a printed verdict and
the right exit code, and no process of the run outlives it (issue 9)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "tests.hostile"
BOUND_S = 300  # a run that needs this long is hung: fail instead of blocking the suite

# target -> (exit code, finding code expected among the active findings, text in its message)
CASES: dict[str, tuple[int, str | None, str]] = {
    "exits:ExitInInit": (1, "construct-failed", "exited with code 0"),
    "exits:ExitInForward": (1, "forward-failed", "exited with code 0"),
    "exits:ExitInEvalForward": (1, "forward-failed", "eval-mode forward crashed: the process exited with code 0"),
    "exits:SegfaultInForward": (1, "forward-failed", "killed by signal SIGSEGV"),
    "exits:KillSelfInForward": (1, "forward-failed", "killed by signal SIGKILL"),
    "exit_at_import:Never": (1, "construct-failed", "exited with code 0"),
    "loop_at_import:Never": (1, "construct-failed", "no result within"),
    "system_exit:Missing": (1, "construct-failed", "SystemExit"),
    "system_exit:ExitingStr": (1, "forward-failed", "Unprintable"),
    "system_exit:ReturnsSubclass": (1, "forward-failed", "tensor subclass"),
    "hangs:SleepsInCWithGil": (1, "forward-failed", "no result within 4 s"),
    "correct:StartsThread": (0, None, ""),
    "global_state:Correct": (0, "global-state-changed", "grad mode"),
    "global_state:HangsInForward": (1, "global-state-changed", "flush denormal"),
    "writes_input:AddsToInput": (1, "input-modified", "wrote into its input"),
    "outputs:ReturnsMeta": (1, "forward-failed", "on meta for an input on cpu"),
    "outputs:EvalWrongShape": (1, "forward-failed", "eval-mode forward returned the wrong shape: returned shape [1,"),
}


def survivors(marker: str) -> list[int]:
    """Processes whose environment carries this run's marker (the worker and anything it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def check(target: str, out: Path, *extra: str, cwd: Path = ROOT) -> tuple[subprocess.CompletedProcess[str], str]:
    marker = f"BNCONFORM_TEST_RUN={uuid.uuid4().hex}"
    key, value = marker.split("=")
    env = {**os.environ, key: value, "PYTHONPATH": str(ROOT)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    done = subprocess.run(
        [sys.executable, "-m", "bnconform", "check", target, "--output", str(out), "--format", "json,md",
         "--timeout", "2", *extra],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=BOUND_S, check=False,
    )
    return done, marker


def report(out: Path) -> dict[str, Any]:
    return json.loads((out / "bnconform-report.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_class_gives_report_verdict_and_exit_code(name: str, tmp_path: Path) -> None:
    exit_code, code, text = CASES[name]
    done, marker = check(f"{HOSTILE}.{name}", tmp_path / "out")
    assert done.returncode == exit_code, done.stdout + done.stderr
    verdict = "PASS" if exit_code == 0 else "FAIL"
    assert f"bnconform {verdict}:" in done.stdout
    result = report(tmp_path / "out")
    assert (tmp_path / "out" / "bnconform-report.md").is_file()
    assert result["summary"]["exit_code"] == exit_code
    assert "errored" not in {c["status"] for c in result["checks"]}, [c for c in result["checks"]
                                                                      if c["status"] == "errored"]
    if code is not None:
        messages = [f["message"] for f in result["findings"] if f["code"] == code]
        assert any(text in m for m in messages), result["findings"]
    assert survivors(marker) == []


def test_a_class_that_writes_into_its_input_gets_no_phantom_findings(tmp_path: Path) -> None:
    check(f"{HOSTILE}.writes_input:AddsToInput", tmp_path)
    codes = {f["code"] for f in report(tmp_path)["findings"]}
    assert "input-modified" in codes
    # Each probe reads the input it passed, not the one the class modified.
    assert not codes & {"momentum-default", "output-mismatch", "state-dict", "momentum-inverted"}, codes


def test_chdir_at_import_cannot_move_the_default_reports_folder(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    done = subprocess.run(
        [sys.executable, "-m", "bnconform", "check", f"{HOSTILE}.chdir_at_import:Correct", "--format", "json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=BOUND_S, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert report(tmp_path / "reports")["summary"]["verdict"] == "pass"


def test_a_waived_construct_failure_is_inconclusive_not_a_pass(tmp_path: Path) -> None:
    done, _ = check(f"{HOSTILE}.exits:ExitInInit", tmp_path, "--ignore", "construct-failed")
    assert done.returncode == 1
    assert "bnconform INCONCLUSIVE:" in done.stdout
    assert report(tmp_path)["summary"]["verdict"] == "inconclusive"


def test_max_time_stops_the_run_and_says_where(tmp_path: Path) -> None:
    done, marker = check(f"{HOSTILE}.hangs:LoopsInEval", tmp_path, "--timeout", "600", "--max-time", "20")
    assert done.returncode == 1, done.stdout + done.stderr
    result = report(tmp_path)
    reasons = [c["reason"] for c in result["checks"]]
    assert any("stopped after 20 s (--max-time)" in r for r in reasons), reasons
    assert survivors(marker) == []


@pytest.mark.parametrize(("flag", "value"), [("--seed", "-1"), ("--seed", str(2**63)), ("--timeout", "nan"),
                                             ("--timeout", "0"), ("--timeout", "1e10"), ("--max-time", "inf")])
def test_out_of_range_limits_are_one_line_and_exit_2(flag: str, value: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bnconform", "check", "torch.nn:BatchNorm2d", "--output", str(tmp_path), flag, value],
        cwd=ROOT, capture_output=True, text=True, timeout=BOUND_S, check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and flag in done.stderr, done.stderr


def test_the_largest_seed_is_used_without_overflow() -> None:
    from bnconform.supervise import run_supervised

    result = run_supervised("torch.nn:BatchNorm1d", seed=2**63 - 1)
    assert "errored" not in {c["status"] for c in result["checks"]}
    assert result["settings"]["seed"] == 2**63 - 1


def test_the_supervisor_does_not_import_torch(tmp_path: Path) -> None:
    """A whole `bnconform check` leaves torch out of the supervising process (speed, and the
    user's code is only ever imported in the worker)."""
    code = ("import sys; from bnconform.cli import main; "
            f"rc = main(['check', 'torch.nn:BatchNorm1d', '--output', {str(tmp_path)!r}, '--format', 'json']); "
            "print(rc, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=BOUND_S,
                          check=True)
    assert done.stdout.strip().splitlines()[-1] in ("0 False", "1 False"), done.stdout + done.stderr


@pytest.mark.parametrize(("sleep_s", "hangs"), [(5, False), (10, True)])
def test_the_first_call_of_a_kind_gets_twice_the_timeout(sleep_s: int, hangs: bool, tmp_path: Path) -> None:
    """--timeout 4: an import of 5 s is lazy initialization (budget 8 s); one of 10 s is a hang."""
    (tmp_path / "slow_import.py").write_text(f"import time\ntime.sleep({sleep_s})\n"
                                             "from torch.nn import BatchNorm2d as BN\n")
    done, _ = check(f"{tmp_path / 'slow_import.py'}:BN", tmp_path / "out", "--timeout", "4", cwd=tmp_path)
    codes = [f["code"] for f in report(tmp_path / "out")["findings"]]
    if hangs:
        assert done.returncode == 1 and codes == ["construct-failed"]
        assert "hung: no result within 8 s" in report(tmp_path / "out")["findings"][0]["message"]
    else:
        assert done.returncode == 0 and codes == [], done.stdout + done.stderr
