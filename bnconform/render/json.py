"""The canonical JSON report: strict JSON out (no NaN), schema-checked JSON in."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bnconform.errors import UsageError

SCHEMA = "bnconform.result/1"


def render(result: Mapping[str, Any]) -> str:
    """The result as indented JSON; NaN and infinities become the strings "nan"/"inf"/"-inf"."""
    return json.dumps(jsonable(result), indent=2, sort_keys=False, allow_nan=False) + "\n"


def jsonable(value: Any) -> Any:
    """`value` with non-finite floats spelled as strings and tuples turned into lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def load(path: str | Path) -> dict[str, Any]:
    """Read a saved result, refusing files that are not a bnconform result of this schema."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise UsageError(f"{path} is not a bnconform result: invalid JSON ({reason})") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(schema, str) or not schema.startswith("bnconform.result/"):
        raise UsageError(
            f"{path} is not a bnconform result: expected \"schema\": \"{SCHEMA}\", "
            f"got {schema!r}"
        )
    if schema != SCHEMA:
        raise UsageError(
            f"{path} has schema {schema!r}; this bnconform reads {SCHEMA!r} "
            "(re-run the check with this version)"
        )
    return data
