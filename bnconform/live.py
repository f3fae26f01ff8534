"""A one-line progress display on stderr: which check runs, and a call waiting on its timeout.

Shown only on an interactive stderr and only once a run has lasted `delay_s` (a 1 s run
needs no sign of life, and a redraw in a log file is noise). It listens to
bnconform.progress events and redraws from a ticker thread, because a hung call sends no
events while the user waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from bnconform import progress
from bnconform.render.sanitize import inert

CLEAR = "\r\x1b[K"


class ProgressLine:
    """State from the events, and the line that describes it."""

    def __init__(self, stream: TextIO, width: Callable[[], int], clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.width, self.clock = stream, width, clock
        self.started = clock()
        self.check = ""
        self.calls: list[tuple[str, float, float]] = []  # (what, timeout_s, started): nested calls stack up
        self.shown = False
        self.drawn = ""  # redraw only on change: fewer bytes through a slow terminal
        self.lock = threading.Lock()  # drawing vs printing results (live.paused)

    def __call__(self, event: str, **data: Any) -> None:
        if event == "check":
            # a new check: no earlier call is in flight (a killed worker never says call-done)
            self.check, self.calls = str(data.get("code", "")), []
        elif event == "call":
            self.calls.append((str(data.get("what", "")), float(data.get("timeout_s", 0.0)), self.clock()))
        elif event == "call-done" and self.calls:
            self.calls.pop()

    def text(self) -> str:
        """"checking momentum-inverted" or "... - waiting on forward (12 s of the 30 s timeout)"."""
        line = f"bnconform: checking {self.check}" if self.check else "bnconform: importing torch and the target"
        calls = list(self.calls)
        if calls:
            what, timeout_s, since = calls[-1]
            waited = self.clock() - since
            if waited > timeout_s > 0:  # hung: the supervisor is stopping it (and restarting the worker)
                line += f" - {what} passed its {timeout_s:g} s timeout; stopping it"
            elif waited >= 1.0:
                line += f" - waiting on {what} ({waited:.0f} s of the {timeout_s:g} s timeout)"
        line = inert(line)  # `what` names user code (a class name, a constructor call)
        limit = max(self.width() - 1, 10)
        return line if len(line) <= limit else line[: limit - 1] + "…"

    def draw(self, delay_s: float) -> None:
        if self.clock() - self.started < delay_s:
            return
        text = self.text()
        with self.lock:
            if self.shown and text == self.drawn:
                return
            self.stream.write(CLEAR + text)
            self.stream.flush()
            self.shown, self.drawn = True, text

    def clear(self) -> None:
        if self.shown:
            self.stream.write(CLEAR)
            self.stream.flush()
            self.shown = False


@contextmanager
def progress_line(
    stream: TextIO, width: Callable[[], int], delay_s: float = 1.0, interval_s: float = 0.25
) -> Iterator[ProgressLine]:
    """Show the line while the block runs; it is cleared before the block's caller prints."""
    line = ProgressLine(stream, width)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(interval_s):
            try:
                line.draw(delay_s)
            except (OSError, ValueError):  # the terminal went away: stop drawing, keep checking
                return

    ticker = threading.Thread(target=tick, name="bnconform:progress", daemon=True)
    with progress.listening(line):
        ticker.start()
        try:
            yield line
        finally:
            stop.set()
            ticker.join()
            try:
                with line.lock:
                    line.clear()
            except (OSError, ValueError):
                pass


_active: list[ProgressLine] = []


@contextmanager
def showing(stream: TextIO, enabled: bool, delay_s: float = 1.0) -> Iterator[None]:
    """The progress line for a whole command when `enabled` (an interactive stream), else nothing."""
    if not enabled:
        yield
        return
    import shutil

    with progress_line(stream, lambda: shutil.get_terminal_size().columns, delay_s) as line:
        _active.append(line)
        try:
            yield
        finally:
            _active.remove(line)


@contextmanager
def paused() -> Iterator[None]:
    """Clear the progress line and keep it off while results are printed."""
    if not _active:
        yield
        return
    line = _active[-1]
    with line.lock:
        line.clear()
        yield
