"""gamma and beta: trainable Parameters, initialised and applied as the spec says."""

from __future__ import annotations

from bnconform.context import RunContext
from bnconform.discover import misregistered
from bnconform.findings import Severity
from bnconform.probes import basics, model
from bnconform.probes.precision import tolerance_dtype
from bnconform.registry import Verdict, check, failed, passed, skipped
from bnconform.repro import attr, snippet

FORWARD = ("forward-failed",)


def affine_slots(ctx: RunContext) -> list[str]:
    found = ctx.probe(basics.found_tensors)
    return [role for role in ("weight", "bias") if found.has(role)]


@check(
    "affine-params",
    area="affine",
    title="gamma and beta are trainable Parameters",
    severity="error",
    why="If gamma/beta are plain tensors or buffers the optimizer never updates them: the layer cannot learn"
    " its scale and shift, silently.",
    hint="Create them as nn.Parameter(torch.ones(C)) and nn.Parameter(torch.zeros(C)).",
    requires=FORWARD,
)
def affine_params(ctx: RunContext) -> Verdict:
    if not ctx.spec.affine_trainable:
        return skipped("the spec's gamma and beta are fixed (buffers or Parameters both fit)")
    found = ctx.probe(basics.found_tensors)
    roles = affine_slots(ctx)
    if not roles:
        others = ctx.probe(basics.unmapped_parameters)
        return failed(
            f"No weight (gamma) or bias (beta) found among the Parameters {', '.join(others)}" if others
            else "No learnable weight (gamma) or bias (beta) found",
            expected="weight and bias Parameters of shape (C,)",
            observed=f"Parameters {', '.join(others)}; none is a weight or bias" if others else "none found",
            severity=Severity.WARNING,
            repro=snippet(ctx, ["print(dict(bn.named_parameters()))"]),
        )
    described = misregistered(found, tuple(roles), "parameter")
    if not described:
        return passed()
    return failed(
        f"Affine tensors are not trainable Parameters: {described}",
        expected="nn.Parameter",
        observed=described,
        repro=snippet(ctx, ["print([name for name, _ in bn.named_parameters()])"]),
    )


AFFINE = ("affine-params",)


@check(
    "affine-init",
    area="affine",
    title="gamma and beta start at the spec's values (ones and zeros)",
    severity="warning",
    why="Another initialisation changes the network's function at step 0 and breaks reproduction of"
    " published training recipes.",
    hint="Initialise gamma with ones and beta with zeros.",
    requires=FORWARD,
)
def affine_init(ctx: RunContext) -> Verdict:
    if len(affine_slots(ctx)) < 2:
        return skipped("no weight and bias found")
    obs = ctx.probe(model.affine)
    spec = ctx.spec
    wrong = [
        f"{role} = {[round(v, 4) for v in vals[:4]]}"
        for role, vals, init in (("weight", obs.init_weight, spec.weight_init), ("bias", obs.init_bias, spec.bias_init))
        if any(abs(v - init) > 1e-9 for v in vals)
    ]
    if not wrong:
        return passed()
    return failed(
        "Initial affine parameters differ from the spec: " + "; ".join(wrong),
        expected=f"weight = {spec.weight_init:g}, bias = {spec.bias_init:g}",
        observed="; ".join(wrong),
        repro=snippet(ctx, [f"print({attr(ctx, 'weight', 'weight')}, {attr(ctx, 'bias', 'bias')})"]),
    )


@check(
    "affine-apply",
    area="affine",
    title="The output is gamma * x_hat + beta",
    severity="error",
    why="At initialisation (gamma=1, beta=0) a wrong affine formula is invisible; it shows only after training"
    " moves gamma and beta, as a silently worse model.",
    hint="Return gamma * x_hat + beta, with gamma and beta reshaped to broadcast along the channel axis.",
    requires=FORWARD,
)
def affine_apply(ctx: RunContext) -> Verdict:
    if len(affine_slots(ctx)) < 2:
        return skipped("no weight and bias found")
    obs = ctx.probe(model.affine)
    tol = model.EXACT_TOL.get(tolerance_dtype(ctx), 1e-5) * 100
    if obs.error <= tol or obs.explanation == model.OUTPUT_SCALED:
        return passed(relative_error=obs.error)
    w, b = attr(ctx, "weight", "weight"), attr(ctx, "bias", "bias")
    named = obs.explanation not in ("", model.UNEXPLAINED)
    return failed(
        "With non-trivial gamma/beta the output is not gamma * x_hat + beta"
        + (f": {obs.explanation}" if obs.explanation else ""),
        expected="gamma * x_hat + beta",
        observed=obs.explanation if named else f"relative error {obs.error:.3g}",
        repro=snippet(
            ctx,
            [
                "bn.train()",
                "with torch.no_grad():",
                f"    {w}.fill_(1.0); {b}.fill_(0.0)",
                "    x_hat = bn(x)",
                f"    {w}.fill_(2.0); {b}.fill_(0.5)",
                "    y = bn(x)",
                "print('max error:', (y - (2.0 * x_hat + 0.5)).abs().max())",
            ],
        ),
    )
