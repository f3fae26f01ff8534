"""The precision a class really computes in, which can be lower than its input's.

A correct class that casts to float32 inside (for speed, or to share code with half inputs)
returns float64 tensors carrying float32 rounding; judging it with float64 tolerances would
report that rounding as affine or output defects (PROBING.md 7: no false alarms on correct
code). The residual of the per-channel affine fit of a training output is the rounding the
class adds: far below float32's, it computes in float64.
"""

from __future__ import annotations

import torch

from bnconform.context import RunContext
from bnconform.errors import UserCodeError
from bnconform.probes.common import forward, prepare

FLOAT64_NOISE = 1e-11  # fit residual of a float64 computation is ~1e-15; float32's ~1e-7


def working_dtype(ctx: RunContext) -> torch.dtype:
    """float32 when the class's float64 outputs carry float32-sized rounding, else ctx.dtype."""
    if ctx.dtype != torch.float64:
        return ctx.dtype
    from bnconform.probes.statistics import fit_with_activation

    try:
        prep = prepare(ctx, gamma=[1.0], beta=[0.0])
        x = ctx.input_with_stats(ctx.primary_rank, [0.5, -1.0, 2.0], [1.0, 2.0, 0.5], salt=15)
        fit, _ = fit_with_activation(x, forward(ctx, prep.module, x), ctx.spec.channel_axis)
    except UserCodeError:
        return ctx.dtype
    return torch.float32 if FLOAT64_NOISE < fit.residual < 1e-3 else ctx.dtype


def tolerance_dtype(ctx: RunContext) -> torch.dtype:
    return ctx.probe(working_dtype)
