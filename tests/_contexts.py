"""A RunContext for one class, discovered as a run does first, for tests that drive one check or
probe without a whole run (test_thresholds, test_survivors, test_check_survivors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bnconform.api import target_from_object
from bnconform.construct import Builder
from bnconform.context import RunContext, RunSettings
from bnconform.errors import UserCodeError
from bnconform.spec import Spec, load_spec


def context(cls: type, spec: str | Spec = "pytorch", **settings: Any) -> RunContext:
    loaded = load_spec(spec) if isinstance(spec, str) else spec
    ctx = RunContext(loaded, Builder(target_from_object(cls)), RunSettings(**settings))
    assert ctx.domain.probe_rank >= 2  # discovered first, as a run does: probes use its rank
    return ctx


def measured(ctx: RunContext, probe: Callable[..., Any], *args: Any, value: Any) -> None:
    """As if `ctx.probe(probe, *args)` had measured `value`: a check judges given measurements."""
    ctx._cache[(probe, args)] = ("ok", value)  # noqa: SLF001 - the one place tests seed the cache


def probe_failed(ctx: RunContext, probe: Callable[..., Any], *args: Any, error: UserCodeError) -> None:
    """As if `ctx.probe(probe, *args)` had raised `error` in the user's code."""
    ctx._cache[(probe, args)] = ("error", error)  # noqa: SLF001
