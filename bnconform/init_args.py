"""`--init KEY=VALUE` parsing, torch-free: the supervisor parses the command line without
importing torch (the default check must stay within 2x `python -c "import torch"`)."""

from __future__ import annotations

import ast
import re

from bnconform.errors import UsageError

_BARE_WORD = re.compile(r"[\w.:/+\-]+")
_KEYWORDS = {"true": True, "false": False, "none": None, "null": None}


def parse_init(items: list[str]) -> dict[str, object]:
    """Parse `--init KEY=VALUE` items; VALUE is a Python literal or a bare word (a string)."""
    parsed: dict[str, object] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not eq or not key.isidentifier() or not raw:
            raise UsageError(f"bad --init {item!r}: expected KEY=VALUE, e.g. --init groups=4")
        if key in parsed:
            raise UsageError(f"bad --init {item!r}: {key!r} is given twice")
        parsed[key] = _parse_value(item, raw)
    return parsed


def _parse_value(item: str, raw: str) -> object:
    try:
        return ast.literal_eval(raw)  # never eval: --init values come from a command line
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    if raw.lower() in _KEYWORDS:  # `true` from a shell would otherwise be a truthy string
        return _KEYWORDS[raw.lower()]
    if _BARE_WORD.fullmatch(raw):
        return raw
    raise UsageError(f"bad --init {item!r}: {raw!r} is not a Python literal; quote strings")
