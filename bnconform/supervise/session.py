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

    def fatal_for(self, what: str) -> dict[str, Any] | None:
        """The crash record when a call of this kind killed or hung a worker before.

        A kind is the label without its qualifier: "eval-mode forward (cpu float64 module)" is
        an eval-mode forward like any other, and must not hang each replacement in turn.
        """
        if what in self.fatal:
            return self.fatal[what]
        kind = call_kind(what)
        return next((record for label, record in self.fatal.items() if call_kind(label) == kind), None)

    def load(self, prior: Mapping[str, Any]) -> None:
        self.results = dict(prior.get("results", {}))
        self.crashes = dict(prior.get("crashes", {}))
        self.fatal = {c["what"]: c for c in self.crashes.values()} | dict(prior.get("fatal", {}))


CURRENT = Session()


def call_kind(what: str) -> str:
    return what.split(" (", 1)[0]


def describe_changes(changes: Mapping[str, tuple[str, str] | list[str]]) -> dict[str, Any]:
    """The global-state-changed finding's words (the check and the supervisor's fallback share them)."""
    listed = "; ".join(f"{name}: {old} -> {new}" for name, (old, new) in changes.items())
    return {
        "message": f"Importing the target changed global torch state: {listed}",
        "expected": "no global setting changed by the import",
        "observed": ", ".join(changes),
        "details": {"changes": {name: {"before": old, "after": new} for name, (old, new) in changes.items()}},
    }
