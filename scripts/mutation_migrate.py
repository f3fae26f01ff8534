"""Carry a module's mutation outcomes and records across an edit of the module (issue 13).

    python scripts/mutation_migrate.py MODULE   # with cosmic-ray's interpreter, after editing MODULE
    python scripts/mutation_migrate.py MODULE --from COMMIT   # records written against COMMIT's module
    python scripts/mutation_migrate.py MODULE --from-row COMMIT   # a complete row measured before ledgers

Why: cosmic-ray numbers a module's mutants by line and by each operator's occurrence in the whole
module, so any edit renumbers the mutants after it. The ledger (docs/mutation-ledger/) and the
records (scripts/mutation-equivalent.txt, scripts/mutation-rechecked.txt) would then name other
mutants, and a module of a thousand mutants would have to run again from the start. Here a mutant
is named by the top-level definition it lies in (its text), its place inside it and its operator:
- a killed or incompetent mutant inside a definition whose text is unchanged keeps its outcome at
  its new number (as mutmut keeps the results of unchanged functions); every other one, survivors
  included, is pending again, since the new tests may kill it;
- a record of a mutant inside an unchanged definition moves to the mutant's new number; a record
  inside an edited definition is dropped and printed, to be examined again when the mutant runs.
The ledger then names the edited source (`# source:` its git blob), so scripts/mutation.sh resumes
from it. A run without MUTATION_RESUME runs every mutant again, whatever was carried.

A module measured before ledgers has only its summary row. When that row is complete (nothing
pending) and has no survivor, its session's outcomes are known all the same: every mutant was
killed except those the rules and the records (as they were at COMMIT, numbered by the row's
session) call equivalent or rechecked. `--from-row` rebuilds that ledger, refuses unless its counts
are the row's exactly, and carries it and the records to the working tree as above.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import mutation_ledger
from mutation_ledger import Ledger, Mutant

ROOT = mutation_ledger.ROOT
RECORDS = (ROOT / "scripts" / "mutation-equivalent.txt", ROOT / "scripts" / "mutation-rechecked.txt")
CARRIED = ("killed", "incompetent")  # outcomes of the mutant alone; a survivor may be killed now


@dataclass(frozen=True)
class Unit:
    """A top-level statement of a module, or a statement of a top-level class body."""

    text: str
    ordinal: int  # among units of the same text, so two identical ones stay apart
    start: int
    end: int


def units(source: str) -> list[Unit]:
    lines = source.splitlines()
    spans = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.body:
            header_end = min(first_line(child) for child in node.body) - 1
            spans.append((first_line(node), header_end))
            spans.extend((first_line(child), child.end_lineno or child.lineno) for child in node.body)
        else:
            spans.append((first_line(node), node.end_lineno or node.lineno))
    seen: Counter[str] = Counter()
    found = []
    for start, end in spans:
        text = "\n".join(lines[start - 1:end])
        found.append(Unit(text, seen[text], start, end))
        seen[text] += 1
    return found


def first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno] + [d.lineno for d in decorators])


Place = tuple[str, int, int, int, str, int]  # unit text, ordinal, line in unit, column, operator, rank


def places(source: str, mutants: Iterable[Mutant]) -> dict[Place, Mutant]:
    """Each mutant by its place in the unit it lies in; mutants outside every unit have none."""
    spans = units(source)
    placed: dict[Place, Mutant] = {}
    rank: Counter[tuple[object, ...]] = Counter()
    for mutant in sorted(mutants, key=lambda m: (m.operator, m.occurrence)):
        unit = next((u for u in spans if u.start <= mutant.line <= u.end), None)
        if unit is None:
            continue
        where = (unit.text, unit.ordinal, mutant.line - unit.start, mutant.column, mutant.operator)
        placed[(*where, rank[where])] = mutant
        rank[where] += 1
    return placed


def correspondence(old_source: str, old: Iterable[Mutant], new_source: str,
                   new: Iterable[Mutant]) -> dict[tuple[str, int], tuple[Mutant, Mutant]]:
    """Old (operator, occurrence) -> (old mutant, new mutant) for the mutants of unchanged units."""
    before = places(old_source, old)
    after = places(new_source, new)
    return {m.identity: (m, after[place]) for place, m in before.items() if place in after}


def migrated_ledger(ledger: Ledger, old_source: str, new_source: str, new: list[Mutant],
                    commit: str, source: str) -> Ledger:
    carried = {n.identity: o for o, n in correspondence(old_source, ledger.mutants, new_source, new).values()}
    mutants = []
    for mutant in new:
        old = carried.get(mutant.identity)
        if old is not None and old.outcome in CARRIED:
            mutants.append(replace(mutant, outcome=old.outcome, killed_by=old.killed_by))
        else:
            mutants.append(replace(mutant, outcome=mutation_ledger.PENDING, killed_by=""))
    return Ledger(ledger.module, commit, ledger.date, mutants, source)


def migrated_records(lines: list[str], module: str,
                     moved: dict[tuple[str, int], tuple[Mutant, Mutant]]) -> tuple[list[str], list[str]]:
    """The record lines with this module's entries renumbered, and those dropped (edited units)."""
    kept, dropped = [], []
    by_position = {(o.line, o.operator, o.occurrence): n for o, n in moved.values()}
    for raw in lines:
        fields = raw.split("\t", 4)
        if raw.startswith("#") or len(fields) < 5 or fields[0] != module:
            kept.append(raw)
            continue
        new = by_position.get((int(fields[1]), fields[2], int(fields[3])))
        if new is None:
            dropped.append(raw)
        else:
            kept.append("\t".join([module, str(new.line), new.operator, str(new.occurrence), fields[4]]))
    return kept, dropped


def enumerate_mutants(path: Path) -> list[Mutant]:
    """The mutants cosmic-ray's init makes of a module (every operator, no arguments, as
    scripts/mutation.sh configures it)."""
    from cosmic_ray.commands.init import _all_work_items

    mutants = []
    for item in _all_work_items([path], {}):
        (spec,) = item.mutations
        mutants.append(Mutant(spec.start_pos[0], spec.start_pos[1], spec.operator_name, spec.occurrence,
                              spec.definition_name or "", mutation_ledger.PENDING))
    return mutants


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def mutants_of(source: str, name: str) -> list[Mutant]:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / name
        copy.write_text(source)
        return enumerate_mutants(copy)


def migrate(module: str, since: str | None = None) -> int:
    """Move the ledger (if any) and the records from the ledger's source, or from the module at
    commit `since` (a module measured before ledgers: its records only), to the working tree."""
    path = mutation_ledger.path_for(module)
    ledger = mutation_ledger.read(path) if path.is_file() else None
    if since is not None:
        old_source = git("show", f"{since}:{module}")
    elif ledger is not None:
        old_source = git("cat-file", "-p", ledger.source) if ledger.source else git("show", f"{ledger.commit}:{module}")
    else:
        sys.exit(f"mutation_migrate: no ledger for {module} ({path.relative_to(ROOT)}); name the commit its records"
                 " were written against with --from COMMIT")
    new_source = (ROOT / module).read_text()
    new = mutants_of(new_source, Path(module).name)
    old = ledger.mutants if ledger is not None and since is None else mutants_of(old_source, Path(module).name)
    moved = correspondence(old_source, old, new_source, new)
    if ledger is not None and since is None:
        blob = git("hash-object", "-w", module).strip()
        migrated = migrated_ledger(ledger, old_source, new_source, new, git("rev-parse", "HEAD").strip(), blob)
        mutation_ledger.write(migrated)
        print(f"mutation_migrate: {module}: {len(migrated.finished)} of {len(new)} outcomes carried "
              f"({len(ledger.finished)} finished before), the rest pending")
    for records in RECORDS:
        kept, dropped = migrated_records(records.read_text().splitlines(), module, moved)
        records.write_text("\n".join(kept) + "\n")
        for raw in dropped:
            print(f"mutation_migrate: dropped from {records.name} (its definition changed, or no mutant of the"
                  f" ledger's source is there): {raw[:160]}")
    return 0


def summary_script():  # type: ignore[no-untyped-def]
    """scripts/mutation-summary.py (its name is not an importable one)."""
    if "mutation_summary" in sys.modules:
        return sys.modules["mutation_summary"]
    spec = importlib.util.spec_from_file_location("mutation_summary", ROOT / "scripts" / "mutation-summary.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_summary"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


IDENTITY = ("core/ReplaceComparisonOperator_Eq_Is", "core/ReplaceComparisonOperator_NotEq_IsNot")


def identity_against_str_literal(source: str, mutant: Mutant) -> bool:
    """`==` -> `is` against an identifier-like str literal: a rule once called these equivalent
    (interned) and did not run them, so a row of that time does not say which were killed."""
    if mutant.operator not in IDENTITY:
        return False
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and node.lineno <= mutant.line <= (node.end_lineno or node.lineno) and any(
                isinstance(o, ast.Constant) and isinstance(o.value, str) and o.value.isidentifier()
                for o in (node.left, *node.comparators)):
            return True
    return False


def rebuilt_from_row(module: str, records_at: str) -> tuple[Ledger, str, list[list[str]]]:
    """The ledger of the complete, survivor-free session behind the module's summary row, its
    module's source, and the module's records as they were at `records_at` (numbered by it).
    Killed: every mutant no rule and no record names. Pending: those the annotation rule names
    and the `==` -> `is` ones (a row of a session before a rule counts them killed, one after it
    equivalent; it does not say which). The rest survived the session."""
    summary = summary_script()
    row = summary.previous().get(module)
    if row is None or row.survived or row.pending:
        sys.exit(f"mutation_migrate: {module} has no complete summary row without survivors to rebuild from")
    commit = git("rev-parse", row.commit).strip()
    source = git("show", f"{commit}:{module}")
    records = [git("show", f"{records_at}:{path.relative_to(ROOT)}").splitlines() for path in RECORDS]
    equivalent, rechecked = (mutation_ledger.recorded(lines) for lines in records)
    session = Ledger(module, commit, row.date,
                     [replace(m, outcome="survived") for m in mutants_of(source, Path(module).name)])
    columns = summary.columns(session, equivalent, rechecked)
    outcomes = row_outcomes(columns, source)
    undecided = sum(1 for m in outcomes if m.outcome == mutation_ledger.PENDING)
    killed, rechecked_count = (sum(1 for m in outcomes if m.outcome == "killed"),
                               sum(1 for _, column in columns if column == "rechecked"))
    if not consistent(row.killed, row.equivalent, len(outcomes), killed, rechecked_count, undecided):
        sys.exit(f"mutation_migrate: {module}: rebuilt {killed} killed, {rechecked_count} rechecked,"
                 f" {undecided} undecided of {len(outcomes)}; the row says {row.killed} killed,"
                 f" {row.equivalent} equivalent: records not as at {records_at}?")
    session.mutants = outcomes
    return session, source, [[line for line in lines if line.startswith(f"{module}\t")] for lines in records]


def row_outcomes(columns: list[tuple[Mutant, str]], source: str) -> list[Mutant]:
    """Each mutant's outcome in a complete session without survivors, from its summary column
    with every mutant taken as survived: killed where no rule and no record names it."""
    outcomes = []
    for mutant, column in columns:
        if column == "rule" or (column == "survived" and identity_against_str_literal(source, mutant)):
            outcomes.append(replace(mutant, outcome=mutation_ledger.PENDING))  # the row does not say which
        elif column == "survived":
            outcomes.append(replace(mutant, outcome="killed"))
        else:
            outcomes.append(mutant)  # equivalent by record, or killed only since (rechecked)
    return outcomes


def consistent(row_killed: int, row_equivalent: int, total: int, killed: int, rechecked: int, undecided: int) -> bool:
    """The row's counts allow the rebuilt outcomes: every mutant of the module is in the row, and
    its killed count lies between the mutants rebuilt killed and those plus the ones that may have
    been killed (rechecked since: an equivalent record may have become a rechecked one; undecided)."""
    return row_killed + row_equivalent == total and killed <= row_killed <= killed + rechecked + undecided


def migrate_row(module: str, records_at: str) -> int:
    session, old_source, old_records = rebuilt_from_row(module, records_at)
    new_source = (ROOT / module).read_text()
    new = mutants_of(new_source, Path(module).name)
    blob = git("hash-object", "-w", module).strip()
    migrated = migrated_ledger(session, old_source, new_source, new, git("rev-parse", "HEAD").strip(), blob)
    mutation_ledger.write(migrated)
    print(f"mutation_migrate: {module}: rebuilt from its row at {session.commit[:12]}; {len(migrated.finished)}"
          f" of {len(new)} outcomes carried, the rest pending")
    moved = correspondence(old_source, session.mutants, new_source, new)
    for records, ours in zip(RECORDS, old_records, strict=True):
        lines = records.read_text().splitlines()
        ours_now = [i for i, line in enumerate(lines) if line.startswith(f"{module}\t")]
        at = ours_now[0] if ours_now else len(lines)
        others = [line for line in lines if not line.startswith(f"{module}\t")]
        kept, dropped = migrated_records(ours, module, moved)
        records.write_text("\n".join(others[:at] + kept + others[at:]) + "\n")
        for raw in dropped:
            print(f"mutation_migrate: dropped from {records.name} (its definition changed): {raw[:160]}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[2] == "--from-row":
        sys.exit(migrate_row(sys.argv[1], sys.argv[3]))
    if len(sys.argv) == 4 and sys.argv[2] == "--from":
        sys.exit(migrate(sys.argv[1], sys.argv[3]))
    if len(sys.argv) != 2:
        sys.exit("usage: mutation_migrate.py MODULE [--from COMMIT]   (with cosmic-ray's interpreter, after"
                 " editing MODULE; --from: the commit its records were written against, when it has no ledger)")
    sys.exit(migrate(sys.argv[1]))
