"""What user code hands back and what it does to what it was handed.

`validated_output`: a forward's result is only measured when it is a plain tensor of the
input's shape on the input's device; anything else is the forward's failure, named with the
shapes, and never reaches bnconform's own arithmetic (a tensor subclass could run arbitrary
code in every operation, a meta tensor has no values).

`modified_inputs`: RunContext.guarded records every call that wrote into its input (and
puts the input back); this probe adds one plain forward per mode on a fresh input, so the
check has evidence of its own even when it runs alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bnconform.context import RunContext
from bnconform.errors import UserCodeError


def validated_output(label: str, y: object, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(y, torch.Tensor):
        raise UserCodeError(label, f"returned {type(y).__name__}, not a tensor", "type")
    if type(y) not in (torch.Tensor, torch.nn.Parameter):  # never call a subclass's methods
        raise UserCodeError(label, f"returned a tensor subclass ({type(y).__name__}), not a plain tensor", "type")
    if y.device != x.device:
        raise UserCodeError(label, f"returned a tensor on {y.device} for an input on {x.device}", "type")
    if y.shape != x.shape:
        raise UserCodeError(label, f"returned shape {list(y.shape)} for input shape {list(x.shape)}", "shape")
    return y


@dataclass(frozen=True)
class InputWrites:
    calls: tuple[tuple[str, str], ...]  # (call, what changed), first occurrence of each call


def modified_inputs(ctx: RunContext) -> InputWrites:
    from bnconform.probes.common import forward

    module = ctx.build()
    for train in (True, False):
        x = ctx.input_with_stats(ctx.primary_rank, [0.5, -1.0, 2.0], [1.0, 2.0, 0.5], salt=9091)
        forward(ctx, module, x, train=train, grad=False, what="forward (input check)")
    first: dict[str, str] = {}
    for what, change in ctx.modified_inputs:
        first.setdefault(what, change)
    return InputWrites(tuple(first.items()))
