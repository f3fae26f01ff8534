"""Verify the entries of scripts/mutation-rechecked.txt: each named test passes on the module as
its session mutated it and fails on the mutant (issue 13).

    python scripts/mutation-recheck.py [--cosmic-ray PATH] [MODULE ...]

A mutant that survived a session and is killed by a test written since counts as killed in the
summary ("rechecked") only while this says so. For each entry: a copy of the session's commit
(build/mutation/<module>.commit, or the commit of the module's row in docs/mutation-summary.md
when this checkout has no session of it) with tests/ from the working tree, the test run unmutated
(it must pass, or the entry proves nothing), `cosmic-ray apply` of the mutant, the test run
again (it must fail). Prints one line per entry; exits 1 if any entry does not hold.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = ROOT / "build" / "mutation"
RECHECKED = ROOT / "scripts" / "mutation-rechecked.txt"
SUMMARY = ROOT / "docs" / "mutation-summary.md"


def entries(modules: set[str]) -> list[tuple[str, int, str, int, str]]:
    found = []
    for raw in RECHECKED.read_text().splitlines():
        if raw.strip() and not raw.startswith("#"):
            module, line, operator, occurrence, test = raw.split("\t")
            if not modules or module in modules:
                found.append((module, int(line), operator, int(occurrence), test))
    return found


def copy_at(commit: str, into: Path) -> None:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    shutil.rmtree(into / "tests")
    shutil.copytree(ROOT / "tests", into / "tests", ignore=shutil.ignore_patterns("__pycache__"))


def passes(copy: Path, test: str) -> bool:
    run = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", test],
                         cwd=copy, capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return run.returncode == 0


def session_commit(module: str) -> str:
    """The commit the module's session mutated: the local session's, else the summary row's."""
    commit_file = SESSIONS / f"{module.replace('/', '_').replace('.', '_')}.commit"
    if commit_file.exists():
        return commit_file.read_text().strip()
    row = re.search(rf"^\| {re.escape(module)} \|.*\| ([0-9a-f]{{7,40}}), [^|]*\|$",
                    SUMMARY.read_text() if SUMMARY.exists() else "", re.MULTILINE)
    return row[1] if row else ""


def recheck(cosmic_ray: str, entry: tuple[str, int, str, int, str]) -> str:
    module, line, operator, occurrence, test = entry
    commit = session_commit(module)
    if not commit:
        return "no session here or in the summary"
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp)
        copy_at(commit, copy)
        if not passes(copy, test):
            return "the test fails unmutated"
        subprocess.run([cosmic_ray, "apply", module, operator, str(occurrence)], cwd=copy, check=True,
                       capture_output=True)
        mutated = (copy / module).read_text().splitlines()[line - 1].strip()
        return "killed" if not passes(copy, test) else f"SURVIVES ({mutated})"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cosmic-ray", default="cosmic-ray")
    parser.add_argument("modules", nargs="*")
    args = parser.parse_args(argv)
    failures = 0
    for entry in entries(set(args.modules)):
        outcome = recheck(args.cosmic_ray, entry)
        failures += outcome != "killed"
        print(f"{entry[0]}:{entry[1]} {entry[2]} #{entry[3]}: {outcome} by {entry[4]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
