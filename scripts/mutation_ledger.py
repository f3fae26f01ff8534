"""The committed outcome of every mutant of a module (issue 13): docs/mutation-ledger/<module>.tsv.

    python scripts/mutation_ledger.py resume SESSION LEDGER EQUIVALENT   # with cosmic-ray's interpreter

Why: cosmic-ray's sessions live in the ignored build/mutation/ and vanish with the checkout,
while a module of a thousand mutants takes longer than one sitting on a 2-core machine. The
ledger keeps each mutant of a module's last session (its position, operator, occurrence and
outcome, `pending` until it runs, and the test that killed it) in the repository, so that
- scripts/mutation.sh resumes in any checkout where the last sitting stopped, while the module is
  unchanged since the ledger's commit (`resume` copies the finished outcomes into a new session,
  and leaves unrun the mutants recorded as equivalent);
- scripts/mutation-summary.py rebuilds a module's row from it when this checkout has no session;
- the runner puts the tests that killed most mutants first, in a fresh checkout too.
Standard library only: cosmic-ray's interpreter and the project's both import it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEDGERS = ROOT / "docs" / "mutation-ledger"
COLUMNS = ("line", "column", "operator", "occurrence", "definition", "outcome", "killed_by")
PENDING = "pending"


@dataclass(frozen=True)
class Mutant:
    line: int
    column: int
    operator: str
    occurrence: int
    definition: str
    outcome: str  # cosmic-ray's test outcome (killed, survived, incompetent) or PENDING
    killed_by: str = ""

    @property
    def identity(self) -> tuple[str, int]:
        """Unique within a module: cosmic-ray numbers each operator's occurrences in order."""
        return (self.operator, self.occurrence)


@dataclass
class Ledger:
    module: str
    commit: str
    date: str
    mutants: list[Mutant] = field(default_factory=list)
    source: str = ""  # git blob of the module the positions are in, when migrated (mutation_migrate.py)

    @property
    def finished(self) -> list[Mutant]:
        return [m for m in self.mutants if m.outcome != PENDING]


def path_for(module: str, directory: Path = LEDGERS) -> Path:
    return directory / f"{module.replace('/', '_').replace('.', '_')}.tsv"


def killer_of(output: str | None) -> str:
    """The runner's report is the test command's output: {"killed_by": nodeid, ...}. A cosmic-ray
    timeout or another tool's output names no test."""
    try:
        report = json.loads(output or "{}")
    except ValueError:
        return ""
    return str(report.get("killed_by") or "") if isinstance(report, dict) else ""


def from_dump(lines: Iterable[str], commit: str, date: str) -> Ledger:
    """A ledger from `cosmic-ray dump SESSION` (one JSON [work item, result] per line)."""
    ledger = Ledger("", commit, date)
    for line in lines:
        item, result = json.loads(line)
        (mutation,) = item["mutations"]
        ledger.module = mutation["module_path"]
        line_number, column = mutation["start_pos"]
        outcome = result["test_outcome"] if result else PENDING
        killer = killer_of(result.get("output")) if result else ""
        ledger.mutants.append(Mutant(line_number, column, mutation["operator_name"], mutation["occurrence"],
                                     mutation.get("definition_name") or "", outcome, killer))
    return ledger


def write(ledger: Ledger, directory: Path = LEDGERS) -> Path:
    path = path_for(ledger.module, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ["\t".join(str(getattr(m, c)) for c in COLUMNS) for m in sorted(
        ledger.mutants, key=lambda m: (m.line, m.column, m.operator, m.occurrence))]
    header = [f"# module: {ledger.module}", f"# commit: {ledger.commit}", f"# date: {ledger.date}"]
    header += [f"# source: {ledger.source}"] if ledger.source else []
    header.append("\t".join(COLUMNS))
    path.write_text("\n".join(header + rows) + "\n")
    return path


def read(path: Path) -> Ledger:
    meta: dict[str, str] = {}
    mutants = []
    for raw in path.read_text().splitlines():
        if raw.startswith("# ") and ": " in raw:
            key, value = raw[2:].split(": ", 1)
            meta[key] = value
        elif raw and raw != "\t".join(COLUMNS):
            line, column, operator, occurrence, definition, outcome, killer = raw.split("\t")
            mutants.append(Mutant(int(line), int(column), operator, int(occurrence), definition, outcome, killer))
    return Ledger(meta["module"], meta["commit"], meta["date"], mutants, meta.get("source", ""))


def read_all(directory: Path = LEDGERS) -> dict[str, Ledger]:
    found = (read(p) for p in sorted(directory.glob("*.tsv"))) if directory.is_dir() else iter(())
    return {ledger.module: ledger for ledger in found}


def outcomes_to_copy(ledger: Ledger, pending: dict[tuple[str, int], tuple[str, int]]) -> list[tuple[str, Mutant]]:
    """(job id, finished mutant of the ledger) for each pending job of a new session that is the same
    mutant: same operator and occurrence, at the same line (the module is unchanged, so a job at
    another line would mean the operators were renumbered: copy nothing for it)."""
    jobs = []
    for mutant in ledger.finished:
        job = pending.get(mutant.identity)
        if job is not None and job[1] == mutant.line:
            jobs.append((job[0], mutant))
    return jobs


def recorded(lines: Iterable[str]) -> dict[tuple[str, int, str, int], str]:
    """(module, line, operator, occurrence) -> the last column, from the lines of
    mutation-equivalent.txt (why the mutant cannot change behaviour) or mutation-rechecked.txt
    (the test that kills it since)."""
    table = {}
    for raw in lines:
        if raw.strip() and not raw.startswith("#"):
            module, line, operator, occurrence, last = raw.split("\t", 4)
            table[(module, int(line), operator, int(occurrence))] = last
    return table


def recorded_equivalent(pending: dict[tuple[str, int, str, int], str], lines: Iterable[str]) -> list[str]:
    """Job ids of pending mutants recorded as equivalent (the lines of mutation-equivalent.txt).
    The summary counts such a mutant equivalent whatever its outcome, so running it (minutes
    when every covering test passes) changes nothing."""
    equivalent = recorded(lines)
    return [job for key, job in pending.items() if key in equivalent]


def pending_jobs(db: object) -> dict[tuple[str, int, str, int], str]:
    """(module, line, operator, occurrence) -> job id of each mutant the session has not run."""
    jobs = {}
    for item in db.pending_work_items:  # type: ignore[attr-defined]
        (mutation,) = item.mutations
        key = (str(mutation.module_path), mutation.start_pos[0], mutation.operator_name, mutation.occurrence)
        jobs[key] = item.job_id
    return jobs


def resume(session: Path, ledger_path: Path, equivalent_path: Path) -> int:
    """Copy the ledger's finished outcomes into the session's pending jobs, and mark the mutants
    recorded as equivalent survived without running them (cosmic-ray's API)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    copied: list[tuple[str, Mutant]] = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        if ledger_path.is_file():
            ledger = read(ledger_path)
            by_identity = {(k[2], k[3]): (job, k[1]) for k, job in pending_jobs(db).items()}
            copied = outcomes_to_copy(ledger, by_identity)
            for job_id, mutant in copied:
                output = json.dumps({"killed_by": mutant.killed_by, "from_ledger": ledger.commit})
                db.set_result(job_id, WorkResult(WorkerOutcome.NORMAL, output, TestOutcome(mutant.outcome)))
            print(f"mutation_ledger: {len(copied)} finished mutants copied from {ledger_path.name} "
                  f"(session {ledger.commit[:12]}, {ledger.date})")
        lines = equivalent_path.read_text().splitlines() if equivalent_path.is_file() else []
        skipped = recorded_equivalent(pending_jobs(db), lines)
        for job_id in skipped:
            output = json.dumps({"rc": 0, "recorded_equivalent": True})
            db.set_result(job_id, WorkResult(WorkerOutcome.SKIPPED, output, TestOutcome.SURVIVED))
        print(f"mutation_ledger: {len(skipped)} mutants recorded as equivalent left unrun")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "resume":
        sys.exit("usage: mutation_ledger.py resume SESSION LEDGER EQUIVALENT")
    sys.exit(resume(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])))
