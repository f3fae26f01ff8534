"""Importing this package registers every check, prerequisites first."""

from bnconform.checks import (  # noqa: F401  (registration order is execution order)
    basics,
    running,
    normalization,
    modes,
    model,
    output,
)
