"""bnconform test suite (a package, so that `tests.corpus.*` targets import from the repo root)."""
