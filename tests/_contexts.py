"""A RunContext for one class, discovered as a run does first, for tests that drive one check or
probe without a whole run (test_thresholds, test_survivors, test_check_survivors)."""

from __future__ import annotations

from typing import Any

from bnconform.api import target_from_object
from bnconform.construct import Builder
from bnconform.context import RunContext, RunSettings
from bnconform.spec import Spec, load_spec


def context(cls: type, spec: str | Spec = "pytorch", **settings: Any) -> RunContext:
    loaded = load_spec(spec) if isinstance(spec, str) else spec
    ctx = RunContext(loaded, Builder(target_from_object(cls)), RunSettings(**settings))
    assert ctx.domain.probe_rank >= 2  # discovered first, as a run does: probes use its rank
    return ctx
