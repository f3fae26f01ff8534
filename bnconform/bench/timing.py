"""Timing through pytest-benchmark: run pytest in-process on suite.py with the cases as a plugin.

Why this way rather than building a BenchmarkFixture by hand: the fixture's constructor is
internal and changes between pytest-benchmark releases, while its command-line options
(--benchmark-json, --benchmark-save, --benchmark-storage, rounds and warm-up) are its stable
interface. So the calibration, statistics and saved JSON are exactly pytest-benchmark's,
and a saved run can also be read by `pytest-benchmark compare`. Running in-process keeps
the already imported torch (no second 1-2 s import). Plugin autoloading is off for the
inner session and no conftest.py is read, so neither the user's pytest plugins, conftest
files nor PYTEST_ADDOPTS change the timings.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cases import Case

SUITE = Path(__file__).with_name("suite.py")


@dataclass(frozen=True)
class Rounds:
    """pytest-benchmark's calibration budget per case."""

    min_rounds: int
    max_time_s: float
    warmup_iterations: int


QUICK = Rounds(min_rounds=5, max_time_s=0.15, warmup_iterations=1)
FULL = Rounds(min_rounds=10, max_time_s=1.0, warmup_iterations=3)


class CasesPlugin:
    """Gives suite.py its cases and adds bnconform's own section to the JSON."""

    def __init__(self, cases: list[Case], extra: dict[str, Any]) -> None:
        self.cases = cases
        self.extra = extra

    def pytest_generate_tests(self, metafunc: Any) -> None:
        if "bench_case" in metafunc.fixturenames:
            metafunc.parametrize("bench_case", self.cases, ids=[c.test_id for c in self.cases])

    def pytest_benchmark_update_json(self, config: Any, benchmarks: Any, output_json: dict[str, Any]) -> None:
        output_json["bnconform"] = self.extra


def pytest_args(json_path: Path, rounds: Rounds, workdir: Path, save: str | None, storage: Path) -> list[str]:
    ini = workdir / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")  # not the caller's ini: its addopts may disable benchmarks
    args = [
        str(SUITE), "-c", str(ini), "--rootdir", str(workdir), "-q", "-p", "pytest_benchmark.plugin",
        "-p", "no:cacheprovider", "--noconftest", "--import-mode=importlib", "--benchmark-enable",
        f"--benchmark-json={json_path}", f"--benchmark-min-rounds={rounds.min_rounds}",
        f"--benchmark-max-time={rounds.max_time_s}", "--benchmark-min-time=0.000005",
        "--benchmark-warmup=on", f"--benchmark-warmup-iterations={rounds.warmup_iterations}",
        "--benchmark-disable-gc", "--benchmark-sort=name",
    ]
    if save:
        args += [f"--benchmark-storage=file://{storage.resolve()}", f"--benchmark-save={save}"]
    return args


@contextlib.contextmanager
def isolated_environment() -> Iterator[None]:
    """No plugin autoload and no PYTEST_ADDOPTS for the inner session; restored afterwards."""
    saved = {key: os.environ.get(key) for key in ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS")}
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    os.environ.pop("PYTEST_ADDOPTS", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_benchmarks(cases: list[Case], extra: dict[str, Any], json_path: Path, rounds: Rounds,
                   save: str | None = None, storage: Path = Path(".benchmarks")) -> dict[str, Any]:
    """Time every case; return pytest-benchmark's JSON (also written to json_path, and saved if asked)."""
    import pytest

    json_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bnconform-bench-") as tmp, isolated_environment():
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            code = pytest.main(pytest_args(json_path, rounds, Path(tmp), save, storage),
                               plugins=[CasesPlugin(cases, extra)])
    if code != 0 or not json_path.exists():
        tail = "\n".join(captured.getvalue().strip().splitlines()[-15:])
        raise RuntimeError(f"the pytest-benchmark session failed (pytest exit {int(code)}):\n{tail}")
    return json.loads(json_path.read_text(encoding="utf-8"))


def saved_path(storage: Path, save: str) -> Path | None:
    """The newest file pytest-benchmark saved as NNNN_<save>.json under storage/<machine>/."""
    found = sorted(storage.glob(f"*/*_{save}.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None
