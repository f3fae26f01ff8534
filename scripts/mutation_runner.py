"""A fork server that runs a mutant's covering tests in a fraction of a pytest start (issue 13).

    python scripts/mutation_runner.py serve MODULE TEST_ARGS...   # in the copy, before cosmic-ray
    python scripts/mutation_runner.py run                          # cosmic-ray's test command

Why: a mutant of a check costs a fresh interpreter, `import torch` (1-2 s on a 2-core machine)
and every covering test; most of a module's mutants then cost minutes. The server imports the
heavy dependencies once and forks a child per mutant, which imports the (mutated) bnconform
from the copy fresh, so each mutant still runs against its own source.

Which tests: before the first mutant, the covering tests run once on the unmutated module under
coverage with one context per test. A mutant then runs only the tests that executed one of the
lines it changed (a test that never reaches a line behaves identically with that line mutated):
the tests that killed recent mutants first, then fastest first, stopping at the first failure.
A changed line executed at import time (a constant, a decorator's arguments, a signature) can
affect every test: those mutants run them all. A mutant
whose lines no test executes survives without running anything. Lines run only in subprocesses
(the supervised worker) are not seen; a mutant there can only look *more* alive, never killed
by mistake, so the selection never inflates a score.

Timeouts: each covering test gets ten times its unmutated duration (at least 20 s); one that
overruns is a hang, and the mutant counts as killed by it, as cosmic-ray counts its own timeout
but without waiting for it. cosmic-ray's timeout still bounds the whole run: it kills the `run`
client's process group; the server notices the closed connection and kills the child's.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import mutation_ledger

SOCKET = ".mutation-runner.sock"
COVERAGE_MAP = ".mutation-coverage.json"
KILLER = ".mutation-killer"  # the child writes the node id of the test that failed
KILLERS_KEPT = 20
# A covering test that runs this many times longer on a mutant than it did unmutated (measured
# under coverage, so already slower than a plain run), and at least DEADLINE_FLOOR_S, is a hang:
# the mutant counts as killed, as cosmic-ray counts its own timeout, minutes sooner.
DEADLINE_FACTOR = 10
DEADLINE_FLOOR_S = 20.0
IMPORT_CONTEXT = ""  # coverage's context before the first test: module-level lines


def serve(module: str, test_args: list[str]) -> None:
    root = Path.cwd()
    for heavy in ("torch", "numpy", "pytest", "hypothesis", "coverage", "tabulate"):
        __import__(heavy)
    source = (root / module).read_text()
    original = source.splitlines()
    statements = statement_spans(source)
    lines, durations = measure_coverage(root, module, test_args)
    history = os.environ.get("MUTATION_HISTORY")
    kills = kill_history(Path(history) if history else None, root / "docs" / "mutation-ledger")
    every_test = expected_cost_order(durations, kills)
    deadlines = {test: test_deadline(seconds) for test, seconds in durations.items()}
    at_import = {line for line, tests in lines.items() if IMPORT_CONTEXT in tests}
    print(f"mutation_runner: {len(every_test)} tests, {len(lines)} lines covered, "
          f"{len(at_import)} at import", flush=True)
    path = root / SOCKET
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    killers: list[str] = []  # the tests that killed recent mutants, most recent first
    while True:
        connection, _ = server.accept()
        with connection:
            started = time.perf_counter()
            mutated = (root / module).read_text().splitlines()
            changed = {line for edited in changed_lines(original, mutated) for line in statements(edited)}
            tests = killers_first(select_tests(changed, lines, at_import, every_test), killers)
            report = {"changed": sorted(changed), "tests": len(tests)}
            if not changed:
                report["rc"] = 0  # cosmic-ray's baseline: the tests passed unmutated under coverage
            elif equivalent_by_rule(source, "\n".join(mutated)):
                report["rc"], report["rule"] = 0, True  # survives unrun; the summary counts it equivalent
            elif tests:
                report["rc"] = run_child(root, ["-x", "-q", "-p", "no:cacheprovider", *tests], connection, deadlines)
                killer = (root / KILLER).read_text() if (root / KILLER).exists() else ""
                (root / KILLER).unlink(missing_ok=True)
                report["killed_by"] = killer
                if killer:
                    killers[:] = [killer, *(k for k in killers if k != killer)][:KILLERS_KEPT]
            else:
                report["rc"] = 0  # no test executes these lines: nothing can notice the mutant
            try:
                connection.sendall(json.dumps(report).encode())
            except OSError:
                pass  # the client timed out and is gone
            # One line per mutant in the runner log: where a module's hours go.
            print(json.dumps({**report, "seconds": round(time.perf_counter() - started, 1)}), flush=True)


def equivalent_by_rule(original: str, mutated: str) -> bool:
    """The mutant differs only where scripts/mutation-summary.py's rule calls it equivalent: inside
    an annotation of a module that never evaluates them. Running its tests would take minutes
    (every covering test passes) and could only confirm it survives."""
    try:
        return _normalized(original) == _normalized(mutated)
    except SyntaxError:
        return False  # a mutant that does not compile: its tests fail at import (killed)


def _normalized(source: str) -> str:
    tree = ast.parse(source)
    lazy = any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
               and any(a.name == "annotations" for a in n.names) for n in tree.body)
    for node in ast.walk(tree):
        if lazy and isinstance(node, ast.arg | ast.AnnAssign):
            node.annotation = ast.Constant(None) if isinstance(node, ast.AnnAssign) else None
        if lazy and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.returns = None
    return ast.dump(tree)


def changed_lines(original: list[str], mutated: list[str]) -> set[int]:
    """1-based lines of the original that the mutant replaced or removed (or sits next to)."""
    changed: set[int] = set()
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, original, mutated, autojunk=False).get_opcodes():
        if tag != "equal":
            changed.update(range(i1 + 1, max(i2, i1 + 1) + 1))
    return changed


def statement_spans(source: str) -> Any:
    """line -> the lines of the statement it belongs to: coverage records a statement on its
    first line, a mutant may sit on a continuation line (an argument, a dict entry)."""
    spans: list[tuple[int, int]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.stmt):
            body = getattr(node, "body", None)
            compound = isinstance(body, list) and body and isinstance(body[0], ast.stmt)
            end = body[0].lineno - 1 if compound else node.end_lineno  # a header, not its body
            spans.append((node.lineno, max(node.lineno, end or node.lineno)))

    def statement(line: int) -> range:
        enclosing = [(first, last) for first, last in spans if first <= line <= last]
        if not enclosing:
            return range(line, line + 1)
        first, last = min(enclosing, key=lambda span: span[1] - span[0])
        return range(first, last + 1)

    return statement


def select_tests(changed: set[int], lines: dict[int, set[str]], at_import: set[int],
                 every_test: list[str]) -> list[str]:
    """The tests that execute the changed lines, in `every_test`'s order."""
    if changed & at_import:
        return every_test  # a mutant every test imports
    chosen = set().union(*(lines.get(line, set()) for line in changed))
    return [test for test in every_test if test in chosen]


def expected_cost_order(durations: dict[str, float], kills: dict[str, int]) -> list[str]:
    """Cheapest expected time to the first failure first: a test's duration over its chance to kill,
    estimated from the mutants it killed in earlier sessions (1 + kills, so an unproven test still
    runs, by duration). The order never changes which tests run, so never an outcome."""
    return sorted(durations, key=lambda test: (durations[test] / (1 + kills.get(test, 0)), test))


def kill_history(sessions: Path | None, ledgers: Path | None = None) -> dict[str, int]:
    """Test -> mutants it killed, over the cosmic-ray sessions in `sessions` (MUTATION_HISTORY) and
    the committed ledgers of modules without a session there (the same kills otherwise)."""
    import sqlite3

    kills: dict[str, int] = {}
    found = sorted(sessions.glob("*.sqlite")) if sessions and sessions.is_dir() else []
    for session in found:
        try:
            with sqlite3.connect(f"file:{session}?mode=ro", uri=True) as db:
                outputs = [row[0] for row in db.execute("select output from work_results")]
        except sqlite3.Error:
            continue  # a session being written or from another tool version: no history from it
        for killer in map(mutation_ledger.killer_of, outputs):
            if killer:
                kills[killer] = kills.get(killer, 0) + 1
    with_session = {session.stem for session in found}
    for ledger in sorted(ledgers.glob("*.tsv")) if ledgers and ledgers.is_dir() else []:
        if ledger.stem in with_session:
            continue
        try:
            killers = [m.killed_by for m in mutation_ledger.read(ledger).mutants]
        except (ValueError, KeyError):
            continue  # not a ledger this version writes: no history from it
        for killer in filter(None, killers):
            kills[killer] = kills.get(killer, 0) + 1
    return kills


def killers_first(tests: list[str], killers: list[str]) -> list[str]:
    """The tests that killed recent mutants first: a mutant near another is usually killed by the
    same test, and running it first saves every passing test before it (the order never changes
    which tests run, so never the outcome)."""
    chosen = set(tests)
    first = [k for k in killers if k in chosen]
    rest = chosen - set(first)
    return first + [t for t in tests if t in rest]


def measure_coverage(root: Path, module: str, test_args: list[str]) -> tuple[dict[int, set[str]], dict[str, float]]:
    """Line -> tests that ran it, for `module`. The whole package is measured once per tree and
    test set (MUTATION_COVERAGE_CACHE): the next module of the same tree reuses it."""
    cache = Path(os.environ.get("MUTATION_COVERAGE_CACHE") or root / COVERAGE_MAP)
    if not cache.exists():
        pid = os.fork()
        if pid == 0:
            rc = 1
            try:
                rc = coverage_child(root, test_args, cache)
            finally:
                os._exit(rc)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"mutation_runner: the covering tests fail unmutated ({' '.join(test_args)})")
    data = json.loads(cache.read_text())
    lines = {int(line): set(tests) for line, tests in data["files"].get(module, {}).items()}
    return lines, data["durations"]


def coverage_child(root: Path, test_args: list[str], cache: Path) -> int:
    import coverage
    import pytest

    prepare_child(root)
    package = root / "bnconform"
    cov = coverage.Coverage(data_file=None, include=[f"{package}/*"], branch=False)
    durations: dict[str, float] = {}

    class PerTest:
        def pytest_runtest_protocol(self, item: Any) -> Any:
            cov.switch_context(item.nodeid)
            started = time.perf_counter()
            yield
            durations[item.nodeid] = time.perf_counter() - started

    PerTest.pytest_runtest_protocol = pytest.hookimpl(wrapper=True)(PerTest.pytest_runtest_protocol)  # type: ignore[method-assign]
    cov.start()
    rc = pytest.main(["-q", "-p", "no:cacheprovider", *test_args], plugins=[PerTest()])
    cov.stop()
    import bnconform

    if not bnconform.__file__.startswith(str(root)):
        sys.stderr.write(f"mutation_runner: bnconform came from {bnconform.__file__}, not the copy\n")
        return 3
    measured = cov.get_data()
    files = {}
    for path in measured.measured_files():
        by_line = measured.contexts_by_lineno(path) or {}
        files[str(Path(path).relative_to(root))] = {line: sorted(contexts) for line, contexts in by_line.items()}
    if rc == 0:  # a failing baseline is never cached: every mutant would look killed
        partial = cache.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"files": files, "durations": durations, "tests": test_args}))
        partial.replace(cache)
    return int(rc)


def prepare_child(root: Path) -> None:
    """The copy's bnconform, imported fresh, without bytecode that could outlive a mutant."""
    os.chdir(root)
    sys.path.insert(0, str(root))
    sys.dont_write_bytecode = True
    assert not any(name == "bnconform" or name.startswith(("bnconform.", "tests")) for name in sys.modules)


def test_deadline(unmutated_seconds: float) -> float:
    return max(DEADLINE_FLOOR_S, DEADLINE_FACTOR * unmutated_seconds)


def run_child(root: Path, args: list[str], connection: socket.socket, deadlines: dict[str, float]) -> int:
    """The tests' exit status in a forked child; 1 when a test overran its deadline (a hang)."""
    pid = os.fork()
    if pid == 0:
        rc = 1
        try:
            os.setsid()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            prepare_child(root)
            import pytest

            pytest.hookimpl(wrapper=True)(Deadlines.pytest_runtest_protocol)  # marks it; pytest stays out of `run`
            rc = int(pytest.main(args, plugins=[RecordKiller(root), Deadlines(root, deadlines)]))
        finally:
            os._exit(rc)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return 1 if code < 0 else code  # killed by a signal (its own deadline, a crash): killed
        readable, _, _ = select.select([connection], [], [], 0.05)
        if readable and not connection.recv(1, socket.MSG_PEEK):
            os.killpg(pid, signal.SIGKILL)  # the client was killed: cosmic-ray's timeout
            os.waitpid(pid, 0)
            return 1


class RecordKiller:
    def __init__(self, root: Path) -> None:
        self.root = root

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.failed:
            (self.root / KILLER).write_text(report.nodeid)


class Deadlines:
    """A SIGALRM per test; on expiry the child names the test and kills its process group (the
    test's own subprocesses too), since a hang in C code would never see a Python exception."""

    def __init__(self, root: Path, deadlines: dict[str, float]) -> None:
        self.root, self.deadlines = root, deadlines

    def pytest_runtest_protocol(self, item: Any) -> Any:
        limit = self.deadlines.get(item.nodeid)
        if limit is None:
            return (yield)  # a test the coverage run did not see: cosmic-ray's timeout still applies

        def expire(signum: int, frame: Any) -> None:
            (self.root / KILLER).write_text(f"{item.nodeid} (over its {limit:.0f} s deadline)")
            os.killpg(os.getpgrp(), signal.SIGKILL)

        signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            return (yield)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)


def run() -> int:
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(Path.cwd() / SOCKET))
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
        report = json.loads(b"".join(chunks))
    except (OSError, ValueError) as error:
        abandon_session(f"the server is gone ({error})")
    print(json.dumps(report))
    return int(report["rc"])


def abandon_session(why: str) -> NoReturn:
    """Without the server no test ran, and cosmic-ray counts any non-zero exit (and a timeout) as
    a killed mutant: stop cosmic-ray itself (it runs this command as its direct child, in process)
    before it records anything, so a resumed session runs the mutant again."""
    print(f"mutation_runner: {why}; stopping cosmic-ray so that no outcome is recorded", file=sys.stderr)
    os.kill(os.getppid(), signal.SIGKILL)
    sys.exit(3)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], sys.argv[3:])
    elif sys.argv[1:2] == ["run"]:
        sys.exit(run())
    else:
        sys.exit(__doc__)
