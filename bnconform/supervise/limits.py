"""Run limits checked before anything starts: bad values are one line and exit 2 (torch-free)."""

from __future__ import annotations

import math

from bnconform.errors import UsageError

MAX_SEED = 2**63 - 1  # torch.Generator seeds are 64-bit; probe seeds are reduced modulo 2**63
MAX_TIMEOUT_S = 86_400.0  # a day per call: beyond that it is a typo, and waits would overflow
MAX_RUN_S = 7 * 86_400.0


def validate_limits(seed: object, timeout_s: object, max_time_s: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"--seed {seed!r} must be an integer from 0 to 2**63-1 ({MAX_SEED})")
    seconds("--timeout", timeout_s, MAX_TIMEOUT_S)
    if max_time_s is not None:
        seconds("--max-time", max_time_s, MAX_RUN_S)


def seconds(flag: str, value: object, most: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"{flag} {value!r} must be a positive, finite number of seconds")
    if value > most:
        raise UsageError(f"{flag} {value:g} is more than {most:g} s; use at most {most:g}")
    return float(value)
