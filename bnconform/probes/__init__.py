"""Deterministic experiments on the user's module. Each probe measures; checks judge."""
