"""Standalone reproduction snippets: every failure says how to see it without bnconform."""

from __future__ import annotations

from bnconform.context import RunContext


def header(ctx: RunContext, **roles: object) -> list[str]:
    """Imports, a module built like the probe built it, and an input in the spec's layout."""
    if ctx.builder.accepts("rank"):
        roles["rank"] = ctx.primary_rank
    shape = ctx.shape(ctx.primary_rank)
    lines = [
        "import torch",
        ctx.builder.import_line(),
        f"bn = {ctx.builder.describe(ctx.channels, **roles)}.double()",
        "torch.manual_seed(0)",
        f"x = torch.randn({shape}, dtype=torch.float64) * 2 + 1",
    ]
    if ctx.spec.channel_axis == -1:
        lines.append("x = x.movedim(1, -1).contiguous()  # this spec's layout is channels-last")
    return lines


def snippet(ctx: RunContext, body: list[str], **roles: object) -> str:
    return "\n".join(header(ctx, **roles) + body)


def axes_expr(ctx: RunContext) -> str:
    return repr(ctx.spec.axes_for_rank(ctx.primary_rank))


def attr(ctx: RunContext, role: str, fallback: str) -> str:
    """`bn.<name>` of a discovered tensor, so snippets use the user's own attribute names."""
    from bnconform.probes.basics import found_tensors

    try:
        found = ctx.probe(found_tensors)
    except Exception:  # noqa: BLE001 - a snippet must never break a report
        return f"bn.{fallback}"
    return f"bn.{found.slots[role].name}" if found.has(role) else f"bn.{fallback}"


def fmt(value: float) -> str:
    return f"{value:.4g}"
