"""Importing this package registers every check; registration order is execution order,
so a prerequisite always comes before the checks that require it."""

from bnconform.checks import (  # noqa: F401, I001 - order is execution order, never sort
    basics,
    affine,
    running,
    momentum,
    normalization,
    modes,
    state,
    output,
    gradients,
    devices,
    dtypes,
    layouts,
    sequences,
    sync,
    inputs,
)
