"""bnconform: a diagnostic and conformance test suite for BatchNorm implementations.

Public API: `check`, `assert_conforms`, `Report`, `Waiver`, `run_check`. They load lazily,
so `import bnconform` (and the pytest plugin, which pytest imports on every run) loads no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Report", "Waiver", "__version__", "assert_conforms", "check", "run_check"]

if TYPE_CHECKING:
    from bnconform.api import Report, assert_conforms, check, run_check
    from bnconform.waivers import Waiver

_LAZY = {"check": "bnconform.api", "assert_conforms": "bnconform.api", "Report": "bnconform.api",
         "run_check": "bnconform.api", "Waiver": "bnconform.waivers"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bnconform' has no attribute {name!r}")
