"""Hypothesis searches whose cases depend on the class, the spec and the seed only.

Hypothesis (6.131 and later) sometimes draws a float or an integer from the literals of every
"local" module imported so far: the user's other modules, and bnconform's own lazily imported
ones when it is installed editable. A report's minimal failing input then changed with what the
process happened to import before the search (gamma 2.0 in one run, 0.5 in the next), so the
same check of the same class could print a different repro. Hypothesis has no setting for it;
during our searches its pool of local literals is empty, and it is restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def without_local_constants() -> Iterator[None]:
    """Run a search with Hypothesis drawing no literals from imported modules.

    Degrades to a no-op on a Hypothesis without the pool (older) or with a different layout
    (newer): the search still runs, only its cases may again depend on what was imported."""
    providers = _providers_with_local_constants()
    if providers is None:
        yield
        return
    collect = providers._get_local_constants
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()  # permitted constants computed with the old pool
    try:
        yield
    finally:
        providers._get_local_constants = collect
        providers.CONSTANTS_CACHE.cache.clear()


def _providers_with_local_constants() -> Any:
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:
        return None
    needed = ("_get_local_constants", "Constants", "CONSTANTS_CACHE")
    if not all(hasattr(providers, name) for name in needed):
        return None
    if not hasattr(providers.CONSTANTS_CACHE, "cache"):
        return None
    return providers
