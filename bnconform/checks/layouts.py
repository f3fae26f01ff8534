"""Memory layouts: non-contiguous (permuted, sliced) and channels_last inputs give the same values.

What the output layout must be (measured on torch.nn.BatchNorm2d/3d, CPU, torch 2.13):
channels_last / channels_last_3d input -> output in the same memory format; other layouts
-> any layout, values only. channels_last is a special case of a non-contiguous input, so
memory-format is blocked by non-contiguous: a `.view` that fails on every strided input is
reported once, as non-contiguous.
"""

from __future__ import annotations

from bnconform.context import RunContext
from bnconform.findings import Severity
from bnconform.probes import basics, layouts
from bnconform.registry import Verdict, check, failed, passed, skipped
from bnconform.repro import snippet

PREREQUISITES = ("forward-failed",)


def layout_verdict(ctx: RunContext, result: layouts.LayoutResult, repro: str) -> Verdict:
    parity = result.parity
    measured = {k: {"error": parity.errors[k], "allowed": parity.allowed[k]} for k in parity.ratios}
    if not result.errors and not result.layouts:
        return passed(variants=result.tried, **{"max error ratio": max(result.parity.ratios.values(), default=0.0)})
    problems = result.errors or result.layouts
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return failed(
        problems[0] + more,
        expected="the same values as for a contiguous input"
        + ("; output in the input's channels_last format" if result.layouts else ""),
        observed="; ".join((result.errors + result.layouts)[:6]),
        severity=None if result.errors else Severity.WARNING,
        repro=repro,
        details={"errors": result.errors, "layouts": result.layouts, "measured": measured},
    )


@check(
    "non-contiguous",
    area="layouts",
    title="Permuted and sliced (non-contiguous) inputs give the same values as contiguous ones",
    severity="error",
    why="Inputs after a transpose, permute or slice are non-contiguous; `.view` raises on them and code that"
    " assumes a memory order computes statistics over the wrong elements.",
    hint="Use .reshape (or .flatten/.mean(dim=...)) instead of .view, or call x.contiguous() first.",
    requires=PREREQUISITES,
)
def non_contiguous(ctx: RunContext) -> Verdict:
    ranks = ctx.probe(basics.rank_support).accepted
    result = ctx.probe(layouts.non_contiguous, ranks)
    return layout_verdict(ctx, result, snippet(ctx, [
        "xp = x.transpose(0, -1).contiguous().transpose(0, -1)  # same values, permuted strides",
        "print(xp.is_contiguous())",
        "import copy; twin = copy.deepcopy(bn)",
        "y = bn.train()(x); y_p = twin.train()(xp)  # raises, or differs",
        "print((y - y_p).abs().max())",
    ]))


@check(
    "memory-format",
    area="layouts",
    title="channels_last inputs and modules give the same values, and a channels_last output",
    severity="error",
    why="channels_last is the fast layout for convolutions on GPUs (and AMP); a BatchNorm that mis-reads it"
    " computes wrong statistics, and one that returns channels-first output forces a copy per layer.",
    hint="Do not assume NCHW memory order: reduce with x.mean(dim=(0, 2, 3)) / x.var(...) and broadcast"
    " with weight.view(1, C, 1, 1); elementwise ops then keep channels_last.",
    requires=PREREQUISITES,
)
def memory_format(ctx: RunContext) -> Verdict:
    if ctx.spec.channel_axis != 1:
        return skipped("channels_last applies to channels-first (N, C, ...) specs; this spec's channel axis is -1")
    ranks = tuple(r for r in ctx.probe(basics.rank_support).accepted if r in layouts.FORMATS)
    if not ranks:
        return skipped("no 4-D or 5-D input is accepted")
    result = ctx.probe(layouts.memory_formats, ranks)
    fmt = layouts.NAMES[ranks[0]]
    return layout_verdict(ctx, result, snippet(ctx, [
        "x = torch.randn(4, *x.shape[1:], dtype=torch.float64) * 2 + 1",
        "import copy; twin = copy.deepcopy(bn)",
        f"y = bn.train()(x); y_cl = twin.train()(x.contiguous(memory_format=torch.{fmt}))",
        f"print((y - y_cl).abs().max(), y_cl.is_contiguous(memory_format=torch.{fmt}))",
    ]))
