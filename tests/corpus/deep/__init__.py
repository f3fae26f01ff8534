"""Broken BatchNorms for the deep checks (devices, dtypes, layouts, gradcheck, sequences).

Same rules as the parent corpus: each module subclasses tests/corpus/reference.py and
overrides only what its one bug needs, marked `# BUG`, and its docstring names the finding
code it must trigger. They live in this sub-package so tests/test_corpus.py (which lists the
top-level modules) is unaffected; tests/test_deep_corpus.py runs them.
"""
