"""The committed mutation ledger (scripts/mutation_ledger.py) and the summary built from it: a
module's outcomes must survive the checkout unchanged, resume only into the same mutants, and
give the same row as the session they came from."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load(name: str, filename: str):
    if str(SCRIPTS) not in sys.path:  # as `python scripts/X.py` has it: its sibling modules
        sys.path.insert(0, str(SCRIPTS))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ml():
    return load("mutation_ledger", "mutation_ledger.py")


@pytest.fixture(scope="module")
def summary():
    return load("mutation_summary", "mutation-summary.py")


def dumped(line: int, column: int, operator: str, occurrence: int, result: dict | None,
           definition: str | None = "f") -> str:
    item = {"job_id": f"job{line}-{occurrence}", "mutations": [{
        "module_path": "bnconform/probes/x.py", "operator_name": operator, "occurrence": occurrence,
        "start_pos": [line, column], "end_pos": [line, column + 1], "operator_args": {},
        "definition_name": definition}]}
    return json.dumps([item, result])


DUMP = [
    dumped(9, 2, "core/NumberReplacer", 1, None),
    dumped(3, 4, "core/NumberReplacer", 0, {"worker_outcome": "normal", "test_outcome": "killed",
                                            "output": json.dumps({"rc": 1, "killed_by": "tests/t.py::a"})}),
    dumped(5, 0, "core/ReplaceOrWithAnd", 0, {"worker_outcome": "normal", "test_outcome": "survived",
                                              "output": json.dumps({"rc": 0, "killed_by": ""})}, definition=None),
    dumped(7, 8, "core/NumberReplacer", 2, {"worker_outcome": "abnormal", "test_outcome": "killed",
                                            "output": "timeout"}),
    dumped(8, 1, "core/AddNot", 0, {"worker_outcome": "exception", "test_outcome": "incompetent",
                                    "output": None}),
]


def test_a_session_dump_survives_the_round_trip_through_the_committed_file(ml, tmp_path: Path) -> None:
    ledger = ml.from_dump(DUMP, "0123456789abcdef", "2026-12-03 13:00 UTC")
    path = ml.write(ledger, tmp_path)
    assert path.name == "bnconform_probes_x_py.tsv"
    again = ml.read(path)
    assert (again.module, again.commit, again.date) == ("bnconform/probes/x.py", "0123456789abcdef",
                                                        "2026-12-03 13:00 UTC")
    assert again.mutants == sorted(ledger.mutants, key=lambda m: (m.line, m.column))
    assert [(m.line, m.outcome, m.killed_by, m.definition) for m in again.mutants] == [
        (3, "killed", "tests/t.py::a", "f"), (5, "survived", "", ""), (7, "killed", "", "f"),
        (8, "incompetent", "", "f"), (9, "pending", "", "f")]
    assert [m.line for m in again.finished] == [3, 5, 7, 8]
    assert ml.read_all(tmp_path) == {"bnconform/probes/x.py": again}
    assert ml.read_all(tmp_path / "missing") == {}


@pytest.mark.parametrize(("output", "killer"), [
    (json.dumps({"rc": 1, "killed_by": "tests/t.py::a (over its 20 s deadline)"}),
     "tests/t.py::a (over its 20 s deadline)"),
    (json.dumps({"rc": 0, "killed_by": ""}), ""), ("timeout", ""), (None, ""), ("[1, 2]", ""),
])
def test_the_killer_is_read_from_the_runner_s_report_only(ml, output: str | None, killer: str) -> None:
    assert ml.killer_of(output) == killer


def test_resuming_copies_only_finished_outcomes_into_the_same_pending_mutants(ml) -> None:
    ledger = ml.from_dump(DUMP, "0123456789abcdef", "2026-12-03 13:00 UTC")
    pending = {
        ("core/NumberReplacer", 0): ("a", 3),    # the same mutant: copied
        ("core/ReplaceOrWithAnd", 0): ("b", 6),  # renumbered to another line: not the same mutant
        ("core/NumberReplacer", 1): ("c", 9),    # pending in the ledger too: nothing to copy
        ("core/AddNot", 0): ("d", 8),
    }  # ("core/NumberReplacer", 2) already finished in the session: never overwritten
    copied = ml.outcomes_to_copy(ledger, pending)
    assert [(job, m.outcome) for job, m in copied] == [("a", "killed"), ("d", "incompetent")]


EQUIVALENT = {("bnconform/probes/x.py", 5, "core/ReplaceOrWithAnd", 0): "why"}
RECHECKED = {("bnconform/probes/x.py", 5, "core/ReplaceOrWithAnd", 0): "tests/t.py::b"}


@pytest.mark.parametrize(("equivalent", "rechecked", "counts", "survivors"), [
    ({}, {}, (3, 0, 1, 0, 1), ["line 5: core/ReplaceOrWithAnd #0 (-)"]),
    (EQUIVALENT, {}, (3, 0, 0, 1, 1), []),
    ({}, RECHECKED, (4, 1, 0, 0, 1), []),
])
def test_a_module_s_row_comes_from_its_ledger_as_from_its_session(
    ml, summary, monkeypatch: pytest.MonkeyPatch, equivalent: dict, rechecked: dict,
    counts: tuple[int, ...], survivors: list[str],
) -> None:
    monkeypatch.setattr(summary, "source_of", lambda ledger: "x = 1\n")  # no rule applies
    row = summary.summarize(ml.from_dump(DUMP, "0123456789abcdef", "2026-12-03 13:00 UTC"), equivalent, rechecked)
    assert (row.killed, row.rechecked, row.survived, row.equivalent, row.pending) == counts
    assert row.survivors == survivors
    assert (row.path, row.commit, row.date) == ("bnconform/probes/x.py", "0123456789ab", "2026-12-03 13:00 UTC")


def test_a_survivor_inside_an_annotation_is_equivalent_by_rule(ml, summary, monkeypatch: pytest.MonkeyPatch) -> None:
    source = "from __future__ import annotations\n\n\n\ndef f(a: int | None) -> None:\n    pass\n"
    monkeypatch.setattr(summary, "source_of", lambda ledger: source)
    survived = {"worker_outcome": "normal", "test_outcome": "survived", "output": "{}"}
    ledger = ml.from_dump([dumped(5, 9, "core/ReplaceBinaryOperator_BitOr_Add", 0, survived),
                           dumped(6, 4, "core/ReplaceOrWithAnd", 0, survived)], "0123456789abcdef", "d")
    row = summary.summarize(ledger, {}, {})
    assert (row.equivalent, row.by_rule, row.survived) == (1, 1, 1)


def test_resuming_leaves_unrun_only_the_pending_mutants_recorded_as_equivalent(ml) -> None:
    pending = {("bnconform/x.py", 5, "core/AddNot", 0): "a", ("bnconform/x.py", 5, "core/AddNot", 1): "b",
               ("bnconform/y.py", 5, "core/AddNot", 0): "c", ("bnconform/x.py", 6, "core/AddNot", 0): "d"}
    recorded = ["# module, line, operator, occurrence, reason", "",
                "bnconform/x.py\t5\tcore/AddNot\t0\ta reason\twith a tab",
                "bnconform/x.py\t9\tcore/AddNot\t0\tnot pending"]
    assert ml.recorded_equivalent(pending, recorded) == ["a"]


@pytest.fixture(scope="module")
def migrate():
    return load("mutation_migrate", "mutation_migrate.py")


BEFORE = """\
LIMIT = 3


def f(x):
    return x + 1


class C:
    def g(self, y):
        return y * 2

    def h(self, y):
        return y - 4
"""

# f gains a line, a constant comes before the class, g is edited; LIMIT and h keep their text
AFTER = """\
LIMIT = 3


def f(x):
    x = x * 5
    return x + 1


WIDTH = 7


class C:
    def g(self, y):
        return y * 3

    def h(self, y):
        return y - 4
"""


def mutant(ml, line: int, column: int, operator: str, occurrence: int, outcome: str = "pending",
           killed_by: str = ""):
    return ml.Mutant(line, column, operator, occurrence, "", outcome, killed_by)


def before_mutants(ml) -> list:
    number, sub = "core/NumberReplacer", "core/ReplaceBinaryOperator_Sub_Add"
    return [
        mutant(ml, 1, 8, number, 0, "survived"),                       # LIMIT = 3
        mutant(ml, 1, 8, number, 1, "killed", "tests/t.py::limit"),
        mutant(ml, 5, 15, number, 2, "killed", "tests/t.py::f"),       # f: x + 1
        mutant(ml, 10, 19, number, 3, "killed", "tests/t.py::g"),      # g: y * 2
        mutant(ml, 13, 19, number, 4, "incompetent"),                  # h: y - 4
        mutant(ml, 13, 15, sub, 0, "killed", "tests/t.py::h"),
    ]


def after_mutants(ml) -> list:
    number, sub = "core/NumberReplacer", "core/ReplaceBinaryOperator_Sub_Add"
    return [mutant(ml, 1, 8, number, 0), mutant(ml, 1, 8, number, 1), mutant(ml, 5, 12, number, 2),
            mutant(ml, 6, 15, number, 3), mutant(ml, 9, 8, number, 4), mutant(ml, 14, 19, number, 5),
            mutant(ml, 17, 19, number, 6), mutant(ml, 17, 15, sub, 0)]


def test_an_edit_keeps_the_killed_outcomes_of_unchanged_definitions_at_their_new_numbers(
    ml, migrate, tmp_path: Path,
) -> None:
    ledger = ml.Ledger("bnconform/probes/x.py", "0123", "d", before_mutants(ml))
    migrated = migrate.migrated_ledger(ledger, BEFORE, AFTER, after_mutants(ml), "4567", "blob")
    assert (migrated.commit, migrated.source) == ("4567", "blob")
    again = ml.read(ml.write(migrated, tmp_path))  # the source is committed with it
    assert again.source == "blob" and set(again.mutants) == set(migrated.mutants)
    assert [(m.line, m.occurrence, m.outcome, m.killed_by) for m in migrated.mutants] == [
        (1, 0, "pending", ""),  # a survivor runs again: the new tests may kill it
        (1, 1, "killed", "tests/t.py::limit"),
        (5, 2, "pending", ""), (6, 3, "pending", ""),  # f was edited
        (9, 4, "pending", ""),  # new
        (14, 5, "pending", ""),  # g was edited
        (17, 6, "incompetent", ""), (17, 0, "killed", "tests/t.py::h"),  # h moved down four lines
    ]


def test_records_move_with_their_mutant_and_those_of_edited_definitions_are_dropped(ml, migrate) -> None:
    moved = migrate.correspondence(BEFORE, before_mutants(ml), AFTER, after_mutants(ml))
    lines = ["# module, line, operator, occurrence, reason",
             "bnconform/probes/x.py\t13\tcore/NumberReplacer\t4\th's reason\twith a tab",
             "bnconform/probes/x.py\t10\tcore/NumberReplacer\t3\tg's reason",
             "bnconform/probes/y.py\t13\tcore/NumberReplacer\t4\tanother module's"]
    kept, dropped = migrate.migrated_records(lines, "bnconform/probes/x.py", moved)
    assert kept == ["# module, line, operator, occurrence, reason",
                    "bnconform/probes/x.py\t17\tcore/NumberReplacer\t6\th's reason\twith a tab",
                    "bnconform/probes/y.py\t13\tcore/NumberReplacer\t4\tanother module's"]
    assert dropped == ["bnconform/probes/x.py\t10\tcore/NumberReplacer\t3\tg's reason"]


def test_two_statements_of_the_same_text_stay_apart(ml, migrate) -> None:
    source = "A = 1\nA = 1\n"
    number = "core/NumberReplacer"
    old = [mutant(ml, 1, 4, number, 0, "killed", "t1"), mutant(ml, 2, 4, number, 1, "survived")]
    moved = migrate.correspondence(source, old, "B = 2\n" + source, [
        mutant(ml, 1, 4, number, 0), mutant(ml, 2, 4, number, 1), mutant(ml, 3, 4, number, 2)])
    assert {k: (o.line, n.line) for k, (o, n) in moved.items()} == {(number, 0): (1, 2), (number, 1): (2, 3)}


def test_a_session_of_the_module_before_a_migrated_edit_is_left_out_of_the_summary(
    ml, summary, monkeypatch: pytest.MonkeyPatch,
) -> None:
    blobs = {"old:bnconform/probes/x.py": "blob-old\n", "new:bnconform/probes/x.py": "blob-new\n"}
    monkeypatch.setattr(summary, "git_output", lambda *args: blobs.get(args[-1], ""))
    migrated = ml.Ledger("bnconform/probes/x.py", "new", "d", [], "blob-new")
    assert summary.superseded(ml.Ledger("bnconform/probes/x.py", "old", "d"), migrated)
    assert not summary.superseded(ml.Ledger("bnconform/probes/x.py", "new", "d"), migrated)
    assert not summary.superseded(ml.Ledger("bnconform/probes/x.py", "old", "d"),
                                  ml.Ledger("bnconform/probes/x.py", "old", "d"))


def test_a_row_is_stale_only_when_git_shows_its_module_changed_since(summary) -> None:
    assert not summary.changed_since("HEAD", "README.md")
    assert not summary.changed_since("0000000000ab", "README.md")  # an unknown commit: no claim


ROW_SOURCE = """\
from __future__ import annotations


def f(mode: str, x: int) -> int:
    if mode == "train":
        return x + 1
    return x - 2
"""


def test_a_complete_row_is_rebuilt_killed_except_what_a_rule_or_record_names(ml, migrate, summary,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summary, "source_of", lambda ledger: ROW_SOURCE)
    module = "bnconform/probes/x.py"
    mutants = [mutant(ml, 4, 12, "core/ReplaceBinaryOperator_BitOr_Add", 0, "survived"),  # in an annotation
               mutant(ml, 5, 7, "core/ReplaceComparisonOperator_Eq_Is", 0, "survived"),    # == "train" -> is
               mutant(ml, 6, 19, "core/NumberReplacer", 0, "survived"),
               mutant(ml, 7, 15, "core/NumberReplacer", 1, "survived"),
               mutant(ml, 7, 13, "core/ReplaceBinaryOperator_Sub_Add", 0, "survived")]
    session = ml.Ledger(module, "0123", "d", mutants)
    equivalent = {(module, 7, "core/NumberReplacer", 1): "a reason"}
    rechecked = {(module, 7, "core/ReplaceBinaryOperator_Sub_Add", 0): "tests/t.py::sub"}
    columns = summary.columns(session, equivalent, rechecked)
    assert [c for _, c in columns] == ["rule", "survived", "survived", "equivalent", "rechecked"]
    outcomes = migrate.row_outcomes(columns, ROW_SOURCE)
    # the rule's and the identity mutant's fate is not in a row: they run again; the recorded ones
    # keep their column; only the mutant nothing names was certainly killed
    assert [m.outcome for m in outcomes] == ["pending", "pending", "killed", "survived", "survived"]


@pytest.mark.parametrize(("row_killed", "row_equivalent", "ok"), [
    (2, 3, True),    # the killed one and the rechecked one; three equivalent
    (1, 4, True),    # the rechecked one counted equivalent in the row (recorded as such then)
    (4, 1, True),    # both undecided mutants killed in that session
    (0, 5, False),   # fewer killed than certainly killed: a record the row knew is gone
    (5, 0, False),   # more killed than could be
    (2, 2, False),   # not every mutant of the module
])
def test_a_rebuilt_row_must_allow_the_row_s_counts(migrate, row_killed: int, row_equivalent: int, ok: bool) -> None:
    assert migrate.consistent(row_killed, row_equivalent, total=5, killed=1, rechecked=1, undecided=2) is ok


def test_the_runner_leaves_unrun_only_mutants_inside_annotations() -> None:
    runner = load("mutation_runner", "mutation_runner.py")
    assert runner.equivalent_by_rule(ROW_SOURCE, ROW_SOURCE.replace("mode: str", "mode: str + 1"))
    # a str read from a spec file or a JSON report equals the literal without being it
    assert not runner.equivalent_by_rule(ROW_SOURCE, ROW_SOURCE.replace('mode == "train"', 'mode is "train"'))
