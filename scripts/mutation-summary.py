"""Write docs/mutation-summary.md from the mutants' outcomes (issue 13).

    python scripts/mutation-summary.py [--cosmic-ray PATH]

Per module of the judging core: mutants killed, survived, equivalent (listed with a reason in
scripts/mutation-equivalent.txt), not run yet, and the share killed of the non-equivalent
mutants that ran; with the date and commit of each session. Modules without a session are
listed as "not yet run". Surviving mutants are listed so the next test has a target.

Outcomes come from the cosmic-ray sessions in the ignored build/mutation/, each written first to
its committed ledger (docs/mutation-ledger/, scripts/mutation_ledger.py), and from the ledgers of
modules this checkout has no session of. A module measured before ledgers existed keeps its row
(and its survivors) from the summary already written, until a session of it replaces it; its
survivors recorded since as equivalent or as rechecked move to that column.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import mutation_ledger
from mutation_ledger import Ledger, Mutant

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = ROOT / "build" / "mutation"
EQUIVALENT = ROOT / "scripts" / "mutation-equivalent.txt"
RECHECKED = ROOT / "scripts" / "mutation-rechecked.txt"
OUT = ROOT / "docs" / "mutation-summary.md"

# The judging core (issue 13): what decides a verdict, and the renderers' escaping.
CORE = (
    "bnconform/checks/*.py", "bnconform/probes/*.py", "bnconform/reference.py", "bnconform/runner.py",
    "bnconform/result.py", "bnconform/diagnosis.py", "bnconform/spec_file.py", "bnconform/discover.py",
    "bnconform/render/markdown.py", "bnconform/render/html.py", "bnconform/render/junit.py",
    "bnconform/render/sanitize.py",
)


@dataclass
class Module:
    path: str
    commit: str = ""
    date: str = ""
    killed: int = 0
    survived: int = 0
    equivalent: int = 0
    rechecked: int = 0  # survived the session, killed since by a named test (applied by hand)
    pending: int = 0
    by_rule: int = 0  # equivalent by rule: inside an annotation of a module that never evaluates them
    survivors: list[str] = field(default_factory=list)

    @property
    def score(self) -> str:
        ran = self.killed + self.survived
        return f"{self.killed / ran:.0%}" if ran else "-"


def core_modules() -> list[str]:
    found = {str(p.relative_to(ROOT)) for pattern in CORE for p in ROOT.glob(pattern)}
    return sorted(m for m in found if not m.endswith("__init__.py"))


def equivalents(path: Path = EQUIVALENT) -> dict[tuple[str, int, str, int], str]:
    """(module, line, operator, occurrence) -> why the mutant cannot change behaviour
    (mutation-equivalent.txt), or the test that kills it since (mutation-rechecked.txt)."""
    return mutation_ledger.recorded(path.read_text().splitlines()) if path.exists() else {}


def session_ledger(cosmic_ray: str, session: Path) -> Ledger:
    """A local session as a ledger: its commit (build/mutation/<module>.commit) and its date."""
    dump = subprocess.run([cosmic_ray, "dump", str(session)], capture_output=True, text=True, check=True)
    commit_file = session.with_suffix(".commit")
    when = datetime.datetime.fromtimestamp(session.stat().st_mtime, datetime.UTC)
    return mutation_ledger.from_dump(dump.stdout.splitlines(),
                                     commit_file.read_text().strip() if commit_file.exists() else "?",
                                     when.strftime("%Y-%m-%d %H:%M UTC"))


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of annotations, in a module that never evaluates them (PEP 563:
    `from __future__ import annotations`): a mutant inside one cannot change behaviour."""
    tree = ast.parse(source)
    postponed = any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
                    and any(a.name == "annotations" for a in n.names) for n in tree.body)
    if not postponed:
        return []
    found = []
    for node in ast.walk(tree):
        annotations = []
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            annotations.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            annotations.append(node.returns)
        found += [((a.lineno, a.col_offset), (a.end_lineno or a.lineno, a.end_col_offset or 0)) for a in annotations]
    return found


def in_annotation(spans: list[tuple[tuple[int, int], tuple[int, int]]], position: list[int]) -> bool:
    line, column = position
    return any(start <= (line, column) < end for start, end in spans)


def git_output(*args: str) -> str:
    shown = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else ""


def source_of(ledger: Ledger) -> str:
    """The module the ledger's positions are in: its migrated source, or the module at its commit."""
    return git_output("cat-file", "-p", ledger.source) if ledger.source else git_output(
        "show", f"{ledger.commit}:{ledger.module}")


def changed_since(commit: str, path: str) -> bool:
    """The module differs at HEAD from the commit its row was measured at (an unknown commit: no)."""
    return subprocess.run(["git", "diff", "--quiet", commit, "HEAD", "--", path], cwd=ROOT,
                          capture_output=True).returncode == 1


def superseded(session: Ledger, committed: Ledger | None) -> bool:
    """A local session of the module as it was before an edit the committed ledger was migrated
    past (scripts/mutation_migrate.py): its numbers name other mutants now."""
    if committed is None or not committed.source:
        return False
    return git_output("rev-parse", f"{session.commit}:{session.module}").strip() != committed.source


def columns(ledger: Ledger, equivalent: dict[tuple[str, int, str, int], str],
            rechecked: dict[tuple[str, int, str, int], str]) -> list[tuple[Mutant, str]]:
    """Each mutant with its column: pending, rule (equivalent by rule), equivalent, rechecked,
    survived or killed (incompetent too: the mutant does not even import, the tests noticed).

    `==` -> `is` against an identifier-like str literal is no rule: CPython interns the literal,
    but not an equal string read from a spec file or a JSON report, and sessions killed most
    such mutants where they ran. Each is run and judged like any other."""
    annotations = annotation_spans(source_of(ledger)) if any(m.outcome == "survived" for m in ledger.mutants) else []
    found = []
    for mutant in ledger.mutants:
        key = (ledger.module, mutant.line, mutant.operator, mutant.occurrence)
        survived = mutant.outcome == "survived"
        if mutant.outcome == mutation_ledger.PENDING:
            column = "pending"
        elif survived and in_annotation(annotations, [mutant.line, mutant.column]):
            column = "rule"
        elif key in equivalent:
            column = "equivalent"
        elif survived and key in rechecked:
            column = "rechecked"
        else:
            column = "survived" if survived else "killed"
        found.append((mutant, column))
    return found


def summarize(ledger: Ledger, equivalent: dict[tuple[str, int, str, int], str],
              rechecked: dict[tuple[str, int, str, int], str]) -> Module:
    module = Module(ledger.module, ledger.commit[:12], ledger.date)
    for mutant, column in columns(ledger, equivalent, rechecked):
        if column == "pending":
            module.pending += 1
        elif column in ("rule", "equivalent"):
            module.equivalent += 1
            module.by_rule += column == "rule"
        elif column in ("rechecked", "killed"):
            module.killed += 1
            module.rechecked += column == "rechecked"
        else:
            module.survived += 1
            module.survivors.append(f"line {mutant.line}: {mutant.operator} #{mutant.occurrence}"
                                    f" ({mutant.definition or '-'})")
    return module


ROW = re.compile(r"\| (?P<path>\S+) \| (?P<killed>\d+) \((?P<rechecked>\d+)\) \| (?P<survived>\d+)"
                 r" \| (?P<equivalent>\d+)(?: \((?P<by_rule>\d+) by rule\))? \| (?P<pending>\d+) \| [^|]*"
                 r" \| (?P<commit>[0-9a-f]+), (?P<date>[^|]+?) \|$")
SURVIVOR = re.compile(r"line (?P<line>\d+): (?P<operator>\S+) #(?P<occurrence>\d+)")


def previous(path: Path = OUT) -> dict[str, Module]:
    """Measured modules of the summary already written: their counts, session and survivors."""
    kept: dict[str, Module] = {}
    if not path.exists():
        return kept
    for line in path.read_text().splitlines():
        if row := ROW.fullmatch(line.strip()):
            numbers = {k: int(v or 0) for k, v in row.groupdict().items() if k not in ("path", "commit", "date")}
            kept[row["path"]] = Module(row["path"], row["commit"], row["date"].split(";")[0].strip(), **numbers)
        elif line.startswith("- bnconform/") and line[2:].split(" ", 1)[0] in kept:
            module, survivor = line[2:].split(" ", 1)
            kept[module].survivors.append(survivor)
    return kept


def reconcile(module: Module, equivalent: dict[tuple[str, int, str, int], str],
              rechecked: dict[tuple[str, int, str, int], str]) -> Module:
    """A kept row's survivors recorded since as equivalent, or as killed by a rechecked test,
    move to that column (the same accounting a local session gets)."""
    still: list[str] = []
    for survivor in module.survivors:
        found = SURVIVOR.match(survivor)
        key = (module.path, int(found["line"]), found["operator"], int(found["occurrence"])) if found else None
        if key in equivalent:
            module.survived -= 1
            module.equivalent += 1
        elif key in rechecked:
            module.survived -= 1
            module.killed += 1
            module.rechecked += 1
        else:
            still.append(survivor)
    module.survivors = still
    return module


def render(modules: dict[str, Module], head: str) -> str:
    lines = [
        "# Mutation testing of the judging core",
        "",
        "Generated by `scripts/mutation-summary.py` from cosmic-ray sessions run with",
        "`scripts/mutation.sh MODULE` (or `tox -e mutation -- MODULE`); not part of the default CI run.",
        "Each module is mutated alone and tested with only the tests that cover it",
        "(`scripts/mutation-targets.txt`). Equivalent mutants are listed with a reason in",
        "`scripts/mutation-equivalent.txt`, or by rule (counted in the equivalent column and given in",
        "parentheses): a mutant inside an annotation of a module that never evaluates them",
        "(`from __future__ import annotations`). Mutants run only the covering tests that",
        "execute a changed line (`scripts/mutation_runner.py`: coverage measured unmutated; a line run",
        "at import runs them all; a mutant the rule calls equivalent is not run). Each mutant's",
        "outcome is committed in `docs/mutation-ledger/` (one file per module, `pending` until it runs),",
        "so a module's session resumes in any checkout while the module is unchanged, and its row is",
        "rebuilt from the ledger; a module measured before ledgers keeps its row from the summary",
        "already written (its survivors recorded since as equivalent or rechecked move to that column).",
        "After an edit, `scripts/mutation_migrate.py` keeps the killed outcomes of mutants inside",
        "top-level definitions whose text is unchanged (and moves the records with them); every other",
        "mutant of the module, survivors included, runs again. A row whose module changed since its",
        "session says so: its numbers describe the module at that commit (the records of a module",
        "measured before ledgers are moved to the module as it is with `mutation_migrate.py MODULE",
        "--from COMMIT`).",
        "Score = killed / (killed + survived); targets: 85% per",
        "module, 95% in checks/ and reference. \"rechecked\": mutants that survived the session and",
        "were killed since by the test named in `scripts/mutation-rechecked.txt` (each verified by",
        "`scripts/mutation-recheck.py`: the test passes on the session's module and fails on the",
        "mutant); they count as killed until the next session confirms them.",
        "",
        f"Summary written {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC} at commit {head}.",
        "",
        "| module | killed (rechecked) | survived | equivalent | not run | score | session (commit, date) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for path, m in modules.items():
        if not m.commit:
            lines.append(f"| {path} | | | | | not yet run | |")
        else:
            rule = f" ({m.by_rule} by rule)" if m.by_rule else ""
            stale = "; the module changed since" if changed_since(m.commit, path) else ""
            lines.append(f"| {path} | {m.killed} ({m.rechecked}) | {m.survived} | {m.equivalent}{rule} | {m.pending}"
                         f" | {m.score} | {m.commit}, {m.date}{stale} |")
    survivors = [(p, s) for p, m in modules.items() for s in m.survivors]
    if survivors:
        lines += ["", "## Surviving mutants", ""]
        lines += [f"- {p} {s}" for p, s in survivors]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cosmic-ray", default="cosmic-ray", help="the cosmic-ray executable")
    args = parser.parse_args(argv)
    equivalent = equivalents()
    rechecked = equivalents(RECHECKED)
    kept = {path: reconcile(m, equivalent, rechecked) for path, m in previous().items()}
    modules = {path: Module(path) for path in core_modules()} | kept
    ledgers = mutation_ledger.read_all()
    for session in sorted(SESSIONS.glob("*.sqlite")):
        ledger = session_ledger(args.cosmic_ray, session)
        if superseded(ledger, ledgers.get(ledger.module)):
            print(f"{session.name}: of {ledger.module} before its ledger was migrated: left out")
        elif ledger.module:  # a local session is newer than the ledger it may have resumed from
            ledgers[ledger.module] = ledger
            mutation_ledger.write(ledger)
    for path, ledger in ledgers.items():
        modules[path] = summarize(ledger, equivalent, rechecked)
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(render(dict(sorted(modules.items())), head))
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
