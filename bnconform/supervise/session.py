"""What a (re)started worker carries over from the workers before it; torch-free.

One worker process runs one check run, so this is process-global on purpose: the runner
and `RunContext.guarded` consult it without the run's public signature changing. In an
in-process run (`bnconform.api.run_check` called directly) it stays empty and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Session:
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # check code -> CheckResult JSON
    crashes: dict[str, dict[str, Any]] = field(default_factory=dict)  # check code -> crash record
    fatal: dict[str, dict[str, Any]] = field(default_factory=dict)  # call label -> crash record
    import_changes: dict[str, tuple[str, str]] | None = None  # None: the import was not fenced

    def load(self, prior: Mapping[str, Any]) -> None:
        self.results = dict(prior.get("results", {}))
        self.crashes = dict(prior.get("crashes", {}))
        self.fatal = {c["what"]: c for c in self.crashes.values()} | dict(prior.get("fatal", {}))


CURRENT = Session()
