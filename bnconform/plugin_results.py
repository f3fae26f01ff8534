"""Where the pytest plugin's results go: the per-process cache, pytest-xdist (scheduling, the
workers' hand-over to the controller) and the reports `--bnconform-output` writes.

A target is checked once per process and its items share that result, so under xdist its items
must share a worker. xdist's `loadgroup` groups by an `@group` suffix the workers append to
node ids, which pytest 9.2 no longer takes (pytest-dev/pytest-xdist#1386: grouped tests are then
spread as if unmarked); the scheduler here reads the target from the node id itself, for
`--dist loadgroup` and for plain `-n` (`load`), and schedules every other test as those modes
would. Importing this module loads neither torch nor xdist.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

RESULTS = pytest.StashKey[dict]()  # target -> result
ORDER = pytest.StashKey[dict]()  # target -> position in the configuration (the index's order)
BELOW = pytest.StashKey[list]()  # (order, nodeid, finding) below --bnconform-fail-on
GROUPED_MODES = ("load", "loadgroup")


def record(config: pytest.Config, target: str, order: int, result: dict[str, Any]) -> None:
    config.stash.setdefault(RESULTS, {})[target] = result
    config.stash.setdefault(ORDER, {})[target] = order


def ordered(config: pytest.Config) -> list[dict[str, Any]]:
    """The results in the configuration's order, however the items ran (xdist, -p randomly)."""
    results, order = config.stash.get(RESULTS, {}), config.stash.get(ORDER, {})
    return [results[t] for t in sorted(results, key=lambda t: order.get(t, len(order)))]


def below(config: pytest.Config) -> list[tuple[str, dict[str, Any]]]:
    """(nodeid, finding) below fail-on, by target in the configuration's order, then as they ran."""
    return [(nodeid, finding) for _, nodeid, finding in sorted(config.stash.get(BELOW, []), key=lambda e: e[0])]


def hand_over(config: Any) -> None:
    """On an xdist worker: its results for the controller (config.workeroutput, JSON)."""
    stash = config.stash
    config.workeroutput["bnconform"] = json.dumps(
        {"results": stash.get(RESULTS, {}), "order": stash.get(ORDER, {}), "below": stash.get(BELOW, [])})


def gather(config: pytest.Config, data: str) -> None:
    """On the xdist controller: one worker's results (a target checked on several workers, as
    with `--dist each`, gives the same result: the last one is kept)."""
    payload = json.loads(data)
    config.stash.setdefault(RESULTS, {}).update(payload["results"])
    config.stash.setdefault(ORDER, {}).update(payload["order"])
    config.stash.setdefault(BELOW, []).extend(tuple(entry) for entry in payload["below"])


def check_nodeid(nodeid: str, file_name: str) -> tuple[str, str, str] | None:
    """(file, target, check) of a bnconform item's node id, else None; the `@group` suffix
    xdist's loadgroup appends (before pytest 9.2) is dropped."""
    parts = nodeid.split("::")
    if len(parts) != 3 or parts[0].rsplit("/", 1)[-1] != file_name:
        return None
    return parts[0], parts[1], parts[2].split("@", 1)[0]  # a check code never contains "@"


def make_scheduler(config: pytest.Config, log: Any, file_name: str) -> Any:
    """A scheduler keeping each target's items on one worker; None (xdist's own) for the modes
    that already do (loadscope, loadfile) or that define where tests run (each, worksteal)."""
    dist = config.getvalue("dist")
    try:
        from xdist.scheduler import LoadGroupScheduling
    except ImportError:
        return None
    if dist not in GROUPED_MODES or not hasattr(LoadGroupScheduling, "_split_scope"):
        return None

    class TargetScheduling(LoadGroupScheduling):  # type: ignore[misc,valid-type]
        """Work units: one per target (all its checks), one per other test (load) or group (loadgroup)."""

        def _split_scope(self, nodeid: str) -> str:
            parts = check_nodeid(nodeid, file_name)
            if parts is not None:
                return f"bnconform::{parts[0]}::{parts[1]}"
            return super()._split_scope(nodeid) if dist == "loadgroup" else nodeid

    return TargetScheduling(config, log)


def write(output: Path, results: list[dict[str, Any]], formats: Sequence[str] | None = None) -> None:
    """The reports `bnconform check` writes: a folder per target and the index when there are several,
    in `formats` (the configuration's `formats`; all four by default, as the CLI)."""
    from bnconform import project
    from bnconform.render import write_reports

    jobs = [project.Job(r["target"]["text"], {}) for r in results]
    entries = []
    chosen = list(formats or project.DEFAULTS["formats"])
    for job, result, folder in zip(jobs, results, project.folders(jobs, output), strict=True):
        write_reports(result, folder, chosen)
        entries.append(project.index_entry(job, result, folder, output))
    if len(results) > 1:
        project.write_index(entries, output, [], echo=False)
