"""Standalone reproduction snippets: every failure says how to see it without bnconform."""

from __future__ import annotations

from bnconform.context import RunContext


def header(ctx: RunContext, shape: tuple[int, ...] | None = None, **roles: object) -> list[str]:
    """Imports, a module built like the probe built it, and an input in the spec's layout."""
    shape = shape or ctx.shape(ctx.primary_rank)
    if ctx.builder.accepts("rank"):
        roles["rank"] = len(shape)
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


def snippet(ctx: RunContext, body: list[str], shape: tuple[int, ...] | None = None, **roles: object) -> str:
    return "\n".join(header(ctx, shape, **roles) + body)


def build_line(ctx: RunContext, name: str = "fresh") -> str:
    roles = {"rank": ctx.primary_rank} if ctx.builder.accepts("rank") else {}
    return f"{name} = {ctx.builder.describe(ctx.channels, **roles)}.double()"


def axes_expr(ctx: RunContext) -> str:
    return repr(ctx.spec.axes_for_rank(ctx.primary_rank))


def spec_batch_norm(ctx: RunContext, x: str, weight: str = "", bias: str = "") -> str:
    """F.batch_norm of the expression `x` in training mode on the spec's channel axis, with its eps
    (and `weight`/`bias` expressions when given): the spec's training output, as repro text."""
    affine = f", {weight or 'None'}, {bias or 'None'}" if weight or bias else ""
    channels_last = ctx.spec.channel_axis == -1
    source = f"{x}.movedim(-1, 1)" if channels_last else x
    call = f"torch.nn.functional.batch_norm({source}, None, None{affine}, training=True, eps={ctx.spec.eps!r})"
    return f"{call}.movedim(1, -1)" if channels_last else call


def spec_training_output(ctx: RunContext, x: str) -> str:
    """The spec's training output of `x` with the module's own gamma and beta (where found), so a
    difference from bn(x) is the normalization's, not the affine initialization's."""
    gamma, beta = (f"{name}.detach().reshape(-1)" if (name := found_attr(ctx, role)) else "None"
                   for role in ("weight", "bias"))
    return spec_batch_norm(ctx, x, gamma, beta)


def attr(ctx: RunContext, role: str, fallback: str) -> str:
    """`bn.<name>` of a discovered tensor, so snippets use the user's own attribute names."""
    return found_attr(ctx, role) or f"bn.{fallback}"


def found_attr(ctx: RunContext, role: str) -> str | None:
    """`bn.<name>` of the tensor discovery found for `role`; None when it found none."""
    from bnconform.probes.basics import found_tensors

    try:
        found = ctx.probe(found_tensors)
    except Exception:  # noqa: BLE001 - a snippet must never break a report
        return None
    return f"bn.{found.slots[role].name}" if found.has(role) else None


def fmt(value: float) -> str:
    return f"{value:.4g}"
