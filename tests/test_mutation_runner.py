"""The mutation fork server's test choice (scripts/mutation_runner.py): which tests a mutant runs
decides its outcome, their order only how soon a killed mutant is known."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "mutation_runner.py"


@pytest.fixture(scope="module")
def mr():
    if str(SCRIPT.parent) not in sys.path:  # as `python scripts/mutation_runner.py` has it: its sibling modules
        sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("mutation_runner", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_mutant_runs_exactly_the_tests_that_execute_its_lines_in_the_given_order(mr) -> None:
    lines = {3: {"b", "c"}, 4: {"a"}, 9: {"d"}}
    order = ["d", "c", "b", "a", "e"]
    assert mr.select_tests({3, 4}, lines, set(), order) == ["c", "b", "a"]
    assert mr.select_tests({7}, lines, set(), order) == []
    assert mr.select_tests({3, 7}, lines, {7}, order) == order  # a line run at import: every test


def test_recent_killers_go_first_and_nothing_is_added_or_dropped(mr) -> None:
    assert mr.killers_first(["a", "b", "c"], ["c", "x", "b"]) == ["c", "b", "a"]
    assert mr.killers_first(["a", "b"], []) == ["a", "b"]


def test_a_test_that_killed_often_runs_before_a_cheaper_unproven_one(mr) -> None:
    durations = {"golden": 2.0, "unit": 0.1, "slow": 5.0, "tie-b": 0.5, "tie-a": 0.5}
    kills = {"golden": 39}  # 2.0 / 40 = 0.05 < 0.1
    assert mr.expected_cost_order(durations, kills) == ["golden", "unit", "tie-a", "tie-b", "slow"]
    assert mr.expected_cost_order(durations, {}) == ["unit", "tie-a", "tie-b", "golden", "slow"]


def session(path: Path, outputs: list[str | None]) -> None:
    with sqlite3.connect(path) as db:
        db.execute("create table work_results (output text)")
        db.executemany("insert into work_results values (?)", [(o,) for o in outputs])


def test_kill_history_counts_each_session_s_killers(mr, tmp_path: Path) -> None:
    killed = json.dumps({"rc": 1, "killed_by": "t1"})
    session(tmp_path / "a.sqlite", [killed, killed, json.dumps({"rc": 0, "killed_by": ""}), "timeout", None])
    session(tmp_path / "b.sqlite", [json.dumps({"killed_by": "t2"}), killed, "[1, 2]"])
    (tmp_path / "c.sqlite").write_text("not a database")
    assert mr.kill_history(tmp_path) == {"t1": 3, "t2": 1}
    assert mr.kill_history(tmp_path / "missing") == {}
    assert mr.kill_history(None) == {}


LEDGER = """# module: bnconform/probes/{name}.py
# commit: 0123456789abcdef
# date: 2026-12-03 13:00 UTC
line\tcolumn\toperator\toccurrence\tdefinition\toutcome\tkilled_by
3\t4\tcore/NumberReplacer\t0\tf\tkilled\t{killer}
5\t0\tcore/NumberReplacer\t1\tf\tsurvived\t
7\t0\tcore/NumberReplacer\t2\tf\tpending\t
"""


def test_kill_history_counts_the_ledgers_of_modules_without_a_local_session(mr, tmp_path: Path) -> None:
    sessions, ledgers = tmp_path / "sessions", tmp_path / "ledgers"
    sessions.mkdir()
    ledgers.mkdir()
    session(sessions / "bnconform_probes_a_py.sqlite", [json.dumps({"killed_by": "t1"})])
    (ledgers / "bnconform_probes_a_py.tsv").write_text(LEDGER.format(name="a", killer="t1"))  # the session's own
    (ledgers / "bnconform_probes_b_py.tsv").write_text(LEDGER.format(name="b", killer="t2"))
    (ledgers / "bnconform_probes_c_py.tsv").write_text("not a ledger")
    assert mr.kill_history(sessions, ledgers) == {"t1": 1, "t2": 1}
    assert mr.kill_history(None, ledgers) == {"t1": 1, "t2": 1}


def test_a_test_deadline_is_ten_times_its_unmutated_duration_and_at_least_the_floor(mr) -> None:
    assert mr.test_deadline(0.1) == mr.DEADLINE_FLOOR_S == 20.0
    assert mr.test_deadline(5.0) == 50.0


CHILD = """
import importlib.util, socket, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(sys.argv[1]).parent))
spec = importlib.util.spec_from_file_location("mutation_runner", sys.argv[1])
mr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mr)
root = Path(sys.argv[2])
server, client = socket.socketpair()
deadlines = {"tests/test_hang.py::test_hangs": 1.0, "tests/test_hang.py::test_passes": 1.0}
started = time.monotonic()
rc = mr.run_child(root, ["-q", "-p", "no:cacheprovider", sys.argv[3]], server, deadlines)
print(rc, round(time.monotonic() - started), (root / mr.KILLER).read_text() if (root / mr.KILLER).exists() else "")
"""


HANGING_TESTS = """
import os, subprocess, sys, time
def test_hangs():
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    open("worker.pid", "w").write(str(worker.pid))
    time.sleep(60)
def test_passes():
    time.sleep(0.2)
"""


@pytest.mark.parametrize(("selected", "rc", "killer"), [
    ("tests/test_hang.py::test_hangs", "1", "tests/test_hang.py::test_hangs (over its 1 s deadline)"),
    ("tests/test_hang.py::test_passes", "0", ""),
])
def test_a_test_past_its_deadline_kills_the_mutant_its_subprocesses_too_and_is_named(
    tmp_path: Path, selected: str, rc: str, killer: str,
) -> None:
    import subprocess

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_hang.py").write_text(HANGING_TESTS)
    done = subprocess.run([sys.executable, "-c", CHILD, str(SCRIPT), str(tmp_path), selected],
                          capture_output=True, text=True, timeout=60)
    observed_rc, seconds, observed_killer = done.stdout.rstrip("\n").split(" ", 2)
    assert (observed_rc, observed_killer) == (rc, killer) and int(seconds) < 10
    if (tmp_path / "worker.pid").exists():
        assert not running(int((tmp_path / "worker.pid").read_text()))


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan waits for init to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
