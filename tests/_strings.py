"""Text as it arrives from outside: equal to bnconform's literals, never the same object."""

from __future__ import annotations


def fresh(s: str) -> str:
    """An equal string that is not the interned literal (as text read from argv, a spec file or
    JSON is): a comparison by identity instead of value fails on it."""
    return "".join(list(s))
