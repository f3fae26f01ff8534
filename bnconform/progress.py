"""Progress events: which check runs, which user call is in flight.

The checks emit plain events; whoever shows them (the terminal's progress line) listens.
Event data is plain JSON-able values, so a worker process can forward events over a pipe
and the supervisor re-emits them unchanged.

Events: "check" (code=str), "call" (what=str, timeout_s=float), "call-done" ().
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Listener = Callable[..., None]

_listeners: list[Listener] = []


def emit(event: str, **data: Any) -> None:
    """Tell every listener; a listener that raises never breaks the run (progress is cosmetic)."""
    for listener in tuple(_listeners):
        try:
            listener(event, **data)
        except Exception:  # noqa: BLE001, S110 - a broken display must not change a verdict
            pass


@contextmanager
def listening(listener: Listener) -> Iterator[Listener]:
    """Install `listener(event, **data)` for the duration of the block."""
    _listeners.append(listener)
    try:
        yield listener
    finally:
        _listeners.remove(listener)
