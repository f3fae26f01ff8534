"""The mutation fork server's test choice (scripts/mutation_runner.py): which tests a mutant runs
decides its outcome, their order only how soon a killed mutant is known."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "mutation_runner.py"


@pytest.fixture(scope="module")
def mr():
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
