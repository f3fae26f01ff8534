"""Make text that came from user code inert before any renderer shows it.

Class names, docstrings, exception messages and reprs of user values can carry ANSI
escapes (rewrite the terminal), bidi overrides (make `evil` read as `live` in a review,
"Trojan Source") or other control characters (hide text, break XML). Every renderer
passes result text through `inert`: each such character is shown *escaped*, as the
Python literal that would produce it (`\\x1b`, `\\u202e`), so the reader sees that it
was there instead of having it silently removed or obeyed. Newline and tab are kept:
they are layout, and every format already handles them.
"""

from __future__ import annotations

import re

# C0 controls except \t and \n, DEL and C1 controls; bidi embeddings/overrides/isolates
# and marks; line/paragraph separators (they break lines where a format expects none);
# lone surrogates and the non-characters U+FFFE/U+FFFF (invalid in XML, unencodable in UTF-8).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
    "\ud800-\udfff\ufffe\uffff]"
)


def _escaped(match: re.Match[str]) -> str:
    point = ord(match.group())
    return f"\\x{point:02x}" if point <= 0xFF else f"\\u{point:04x}"


def inert(value: str) -> str:
    """`value` with every control, bidi and invalid character replaced by its escape."""
    return _UNSAFE.sub(_escaped, value)


def is_inert(value: str) -> bool:
    """True when `value` holds no character that `inert` would escape."""
    return _UNSAFE.search(value) is None
