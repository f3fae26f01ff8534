"""Reports are written atomically: concurrent runs into one folder each leave a complete set,
and nothing planted at a temporary name is ever followed (issue 9)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from bnconform.errors import UsageError
from bnconform.render import validate_destinations, write_reports

ROOT = Path(__file__).resolve().parents[1]

WRITER = """
import json, sys
from pathlib import Path
from bnconform.render import write_reports
result = json.loads(Path(sys.argv[1]).read_text())
for i in range(int(sys.argv[3])):
    result["summary"]["duration_s"] = float(sys.argv[4]) + i  # which writer, which round
    write_reports(result, Path(sys.argv[2]), ["json", "md", "junit"])
"""


@pytest.fixture(scope="module")
def result_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bnconform.api import run_check

    path = tmp_path_factory.mktemp("result") / "result.json"
    path.write_text(json.dumps(run_check("torch.nn:BatchNorm1d")), encoding="utf-8")
    return path


def test_concurrent_writers_into_one_folder_always_leave_complete_reports(result_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(result_file), str(out), "40", str(1000 * n)])
        for n in range(4)
    ]
    for _ in range(200):  # read while they write: every file parses at every moment it exists
        for name in ("bnconform-report.json",):
            path = out / name
            if path.exists():
                json.loads(path.read_text(encoding="utf-8"))
        if all(w.poll() is not None for w in writers):
            break
    assert [w.wait(timeout=300) for w in writers] == [0, 0, 0, 0]
    final = json.loads((out / "bnconform-report.json").read_text(encoding="utf-8"))
    assert final["schema"] == "bnconform.result/1"
    ElementTree.parse(out / "bnconform-report.xml")
    assert (out / "bnconform-report.md").read_text(encoding="utf-8").strip()
    assert sorted(p.name for p in out.iterdir()) == ["bnconform-report.json", "bnconform-report.md",
                                                     "bnconform-report.xml"]  # no temp file left


def test_a_symlink_planted_at_a_temporary_name_is_never_followed(result_file: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    out = tmp_path / "reports"
    out.mkdir()
    for name in ("bnconform-report.json", "bnconform-report.md"):  # old fixed names and likely prefixes
        (out / f"{name}.tmp").symlink_to(victim)
        (out / f".{name}.tmp").symlink_to(victim)
    write_reports(json.loads(result_file.read_text(encoding="utf-8")), out, ["json", "md"])
    assert victim.read_text(encoding="utf-8") == "precious"
    assert json.loads((out / "bnconform-report.json").read_text(encoding="utf-8"))["schema"]


def test_reports_are_readable_like_any_file(result_file: Path, tmp_path: Path) -> None:
    written = write_reports(json.loads(result_file.read_text(encoding="utf-8")), tmp_path, ["json"])
    mask = os.umask(0)
    os.umask(mask)
    assert written["json"].stat().st_mode & 0o777 == 0o666 & ~mask


def test_an_output_that_is_a_file_is_refused_before_running(tmp_path: Path) -> None:
    file = tmp_path / "afile"
    file.write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        validate_destinations(file)
    with pytest.raises(UsageError, match="cannot be created"):
        validate_destinations(file / "sub")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_output_is_refused_before_running(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(UsageError, match="not writable"):
            validate_destinations(locked / "reports")
    finally:
        locked.chmod(0o700)


def test_a_step_summary_that_is_a_folder_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path))
    with pytest.raises(UsageError, match="GITHUB_STEP_SUMMARY"):
        validate_destinations(None)


def test_the_cli_refuses_an_output_file_with_one_line_and_exit_2(tmp_path: Path) -> None:
    file = tmp_path / "afile"
    file.write_text("x", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "bnconform", "check", "torch.nn:BatchNorm2d", "--output", str(file)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "is a file" in done.stderr
