"""SyncBatchNorm across processes (bnconform.distributed) with gloo on the CPU.

The correct all-reduce SyncBatchNorm of tests/corpus/sync/ is clean at world sizes 2 and 4
(even, uneven and single-sample shards); each broken variant fires exactly its sync code;
a hanging rank becomes a finding with the stack it hung in and leaves no process behind;
a torchrun launch with --distributed reports what --world-size 2 reports. Each spawned
run takes 10-30 s on a busy 2-core machine, so results are shared per module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bnconform.api import run_check
from bnconform.checks.sync import SKIP_REASON
from bnconform.distributed import report
from bnconform.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
CORRECT = "tests.corpus.sync.syncbn:SyncBatchNorm"
SYNC_CODES = ("sync-rank-failed", "sync-not-synchronized", "sync-stats-local-count", "sync-grad",
              "sync-running-stats-diverge", "sync-mismatch")
VARIANTS = {  # module -> the one sync code it must fire
    "sync_not_synchronized": "sync-not-synchronized",
    "sync_stats_equal_weight": "sync-stats-local-count",
    "sync_stats_local_count": "sync-stats-local-count",
    "sync_grad": "sync-grad",
    "sync_running_stats_diverge": "sync-running-stats-diverge",
    "sync_rank_skips_collective": "sync-rank-failed",
}
_CACHE: dict[tuple[str, int], dict[str, Any]] = {}


def distributed_run(target: str, world_size: int = 2, timeout_s: float = 4.0) -> dict[str, Any]:
    key = (target, world_size)
    if key not in _CACHE:
        _CACHE[key] = run_check(target, world_size=world_size, timeout_s=timeout_s)
    return _CACHE[key]


def sync_checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in result["checks"] if c["id"] in SYNC_CODES}


def sync_findings(result: dict[str, Any]) -> set[str]:
    return {f["code"] for f in result["findings"] if f["code"] in SYNC_CODES}


def sync_roots(result: dict[str, Any]) -> set[str]:
    """Sync findings that are root causes (the others are folded under one by the diagnosis)."""
    return {f["code"] for f in result["findings"] if f["code"] in SYNC_CODES and not f.get("caused_by")}


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (every thread's children file)."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(p) for p in (task / "children").read_text().split()]
    return kids


def test_single_process_run_skips_every_sync_check_with_the_reason() -> None:
    result = run_check(CORRECT)
    checks = sync_checks(result)
    assert set(checks) == set(SYNC_CODES)
    assert {c["status"] for c in checks.values()} == {"skipped"}
    assert {c["reason"] for c in checks.values()} == {SKIP_REASON}
    assert "distributed" not in result


@pytest.mark.parametrize("world_size", [2, 4])
def test_correct_syncbn_is_clean_with_even_uneven_and_single_sample_shards(world_size: int) -> None:
    result = distributed_run(CORRECT, world_size)
    assert {c["status"] for c in sync_checks(result).values()} == {"passed"}, sync_checks(result)
    assert not sync_findings(result)
    table = result["distributed"]
    shards = {s["name"]: s["shards"] for s in table["scenarios"]}
    assert set(shards) == {"even", "uneven", "single"}  # every scenario completed on every rank
    assert len(set(shards["uneven"])) > 1 and shards["single"][0] == 1
    assert [r["verdict"] for r in table["ranks"]] == ["matches"] * world_size
    assert table["backend"] == "gloo" and table["world_size"] == world_size
    means = {json.dumps(r["running_mean"]) for r in table["ranks"]}
    assert len(means) == 1  # the same running statistics on every rank


@pytest.mark.parametrize("module", sorted(VARIANTS))
def test_each_broken_variant_fires_exactly_its_code(module: str) -> None:
    code = VARIANTS[module]
    result = distributed_run(f"tests.corpus.sync.{module}:SyncBatchNorm")
    assert sync_roots(result) == {code}
    assert sync_checks(result)[code]["status"] == "failed"
    for finding in result["findings"]:  # anything else it causes is listed as its consequence
        if finding["code"] != code:
            assert finding["code"] not in SYNC_CODES or finding["caused_by"] == code, finding
    doc = __import__(f"tests.corpus.sync.{module}", fromlist=["_"]).__doc__
    assert f"--world-size N: {VARIANTS[module]}." in doc  # the docstring names the same code


def test_a_single_process_bug_is_not_reported_again_as_a_sync_finding(tmp_path: Path) -> None:
    """eps outside the square root, synchronised correctly: the ordinary checks own the bug;
    the ranks are held to what the class computes in one process, and agree with it."""
    target = tmp_path / "eps_sync.py"
    target.write_text(
        "import torch\nfrom tests.corpus.sync.syncbn import SyncBatchNorm as Correct\n"
        "class SyncBatchNorm(Correct):\n"
        "    def _normalize(self, xf, mean, var):\n"
        "        return (xf - mean) / (torch.sqrt(var) + self.eps)\n"
    )
    result = run_check(f"{target}:SyncBatchNorm", world_size=2, timeout_s=4.0)
    assert {c["status"] for c in sync_checks(result).values()} == {"passed"}
    assert result["distributed"]["baseline"]["output"] == "class (single process)"
    assert "eps-placement" in {f["code"] for f in result["findings"]}  # reported by the single-process checks


def test_hanging_rank_is_a_finding_with_its_stack_and_leaves_no_process() -> None:
    result = distributed_run("tests.corpus.sync.sync_rank_skips_collective:SyncBatchNorm")
    (finding,) = [f for f in result["findings"] if f["code"] == "sync-rank-failed"]
    assert "rank 1 hung" in finding["message"]
    trace = finding["details"]["ranks"]["1"]["traceback"]
    assert "all_reduce" in trace and "syncbn.py" in trace  # where it waits, in the user's code
    assert children_of(os.getpid()) == []
    hung = [r for r in result["distributed"]["ranks"] if r["status"] != "ok"]
    assert [r["rank"] for r in hung] == [1] and hung[0]["verdict"] == "failed (hung)"


def test_a_rank_stopped_dead_is_killed_with_the_processes_it_started(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pid_file = tmp_path / "helper.pid"
    monkeypatch.setenv("BNCONFORM_TEST_HELPER_PID", str(pid_file))  # the ranks inherit it
    result = run_check("tests.corpus.sync.sync_rank_stops:SyncBatchNorm", world_size=2, timeout_s=2.0)
    assert sync_findings(result) == {"sync-rank-failed"}
    (finding,) = [f for f in result["findings"] if f["code"] == "sync-rank-failed"]
    assert "rank 1 died" in finding["message"] and "still running at the deadline: killed" in finding["message"]
    assert "rank 0" in finding["message"]  # its peer, stuck in the collective, reported too
    assert children_of(os.getpid()) == []
    helper = Path(f"/proc/{int(pid_file.read_text())}/stat")
    for _ in range(50):  # killed with rank 1's process group; gone once init reaps it
        if not helper.exists() or helper.read_text().split(") ")[1].startswith("Z"):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the rank's helper process outlived the run")


def test_a_rank_that_fails_to_start_is_reported_not_waited_for(tmp_path: Path) -> None:
    target = tmp_path / "fragile.py"
    target.write_text(
        "import os\nfrom tests.corpus.sync.syncbn import SyncBatchNorm as Correct\n"
        "class SyncBatchNorm(Correct):\n"
        "    def __init__(self, *a, **k):\n"
        "        if os.environ.get('RANK') == '1':\n"
        "            raise RuntimeError('rank 1 cannot build <me>')\n"
        "        super().__init__(*a, **k)\n"
    )
    result = run_check(f"{target}:SyncBatchNorm", world_size=2, timeout_s=3.0)
    assert sync_findings(result) == {"sync-rank-failed"}
    (finding,) = [f for f in result["findings"] if f["code"] == "sync-rank-failed"]
    assert "rank 1 raised" in finding["message"] and "cannot build <me>" in finding["message"]
    assert "RuntimeError" in finding["details"]["ranks"]["1"]["traceback"]
    assert children_of(os.getpid()) == []


def test_torchrun_distributed_reports_what_world_size_2_reports(tmp_path: Path) -> None:
    target = "tests.corpus.sync.sync_stats_local_count:SyncBatchNorm"
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run(
        [str(torchrun), "--nproc-per-node", "2", "-m", "bnconform", "check", target, "--distributed",
         "--timeout", "4", "--format", "json,md", "--output", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]  # every rank exits with rank 0's code
    joined = json.loads((tmp_path / "bnconform-report.json").read_text())
    spawned = distributed_run(target)
    statuses = {c: s["status"] for c, s in sync_checks(joined).items()}
    assert statuses == {c: s["status"] for c, s in sync_checks(spawned).items()}
    assert [f["message"] for f in joined["findings"] if f["code"] in SYNC_CODES] == \
        [f["message"] for f in spawned["findings"] if f["code"] in SYNC_CODES]
    assert joined["distributed"]["ranks"] == spawned["distributed"]["ranks"]
    assert joined["distributed"]["launcher"] == "torchrun"
    assert "## Distributed (SyncBatchNorm)" in (tmp_path / "bnconform-report.md").read_text()


def test_external_launcher_where_rank_0_hosts_the_store(tmp_path: Path) -> None:
    """SLURM-style: only RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT are set, rank 0 hosts the store;
    it must stay until the other rank has read the exit code."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORCHELASTIC")}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "bnconform", "check", "tests.corpus.sync.sync_grad:SyncBatchNorm", "--distributed",
         "--timeout", "4", "--format", "json", "--output", str(tmp_path)],
        cwd=ROOT, env={**env, "RANK": str(r), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for r in range(2)]
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [1, 1], [p.stdout.read()[-1500:] for p in procs if p.stdout]
    result = json.loads((tmp_path / "bnconform-report.json").read_text())
    assert sync_roots(result) == {"sync-grad"} and result["distributed"]["launcher"] == "external launcher"


@pytest.mark.parametrize(("options", "message"), [
    ({"world_size": 1}, "must be an integer >= 2"),
    ({"world_size": 2, "distributed": True}, "exclude each other"),
    ({"distributed": True}, "RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT not set"),
    pytest.param({"world_size": 2, "device": "cuda"}, "nccl needs one GPU per rank", marks=pytest.mark.skipif(
        __import__("torch").cuda.device_count() >= 2, reason="this machine has a GPU per rank")),
])
def test_bad_distributed_options_are_usage_errors(options: dict[str, Any], message: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UsageError, match=message):
        run_check(CORRECT, **options)


def test_torch_syncbatchnorm_without_gpus_is_a_usage_error_not_a_finding() -> None:
    with pytest.raises(UsageError, match="only GPU tensors"):
        run_check("torch.nn:SyncBatchNorm", world_size=2)


def test_cli_world_size_1_is_one_line_and_exit_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "bnconform", "check", CORRECT, "--world-size", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--world-size 1" in proc.stderr


def test_rank_table_and_tracebacks_are_escaped_in_markdown_and_html() -> None:
    evil = "<script>alert(1)</script> | ``` [x](javascript:1)"
    result = {"distributed": {
        "world_size": 2, "launcher": "spawn", "backend": "gloo", "device": "cpu", "synchronised_via": evil,
        "tolerance": 1e-6, "scenarios": [{"name": evil, "shards": [1, 2]}],
        "ranks": [{"rank": 0, "status": "ok", "samples": [1], "output_error": 0.0, "input_grad_error": 0.0,
                   "running_mean": [0.5], "running_var": [1.0], "num_batches_tracked": 1, "verdict": "matches",
                   "error": None},
                  {"rank": 1, "status": "hung", "samples": [], "verdict": evil,
                   "error": {"kind": "hung", "what": evil, "message": evil, "traceback": evil + "\n````\n<b>"}}],
    }}
    md = report.markdown(result)
    html = report.html(result)
    prose, _, code = md.partition("`````text")  # the fence outlasts the traceback's ```` run
    assert code and "<script>" not in prose and "&lt;script&gt;" in prose
    assert "\\|" in prose  # a pipe cannot split a table cell
    assert "<script>" not in html and "<b>" not in html and "&lt;script&gt;" in html
    assert report.markdown({}) == "" and report.html({}) == ""
