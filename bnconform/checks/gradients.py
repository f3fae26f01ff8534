"""Gradients of a training step against the float64 reference."""

from __future__ import annotations

from bnconform.context import RunContext
from bnconform.probes import model
from bnconform.registry import Verdict, check, failed, passed
from bnconform.repro import snippet, spec_training_output


@check(
    "grad-mismatch",
    area="gradients",
    title="Input and parameter gradients match the reference",
    severity="error",
    why="Statistics detached from the graph (or a wrong hand-written backward) give wrong input gradients:"
    " the network still trains, only worse.",
    hint="Keep mean and var in the autograd graph (no .detach()/.data/.item() in the normalization path);"
    " for a custom backward, compare with torch.autograd.gradcheck.",
    requires=("forward-failed",),
)
def grad_mismatch(ctx: RunContext) -> Verdict:
    obs = ctx.probe(model.gradients)
    wrong = {k: v for k, v in obs.errors.items() if not v <= obs.tolerance}
    if not wrong:
        return passed(**obs.errors)
    explained_by = explaining_codes(ctx)
    described = ", ".join(
        f"{k}: {'missing' if v == float('inf') else f'relative error {v:.3g}'}" for k, v in wrong.items()
    )
    return failed(
        f"Gradients differ from the reference ({described})",
        expected=f"relative error <= {obs.tolerance:g}",
        observed=described,
        repro=snippet(
            ctx,
            [
                "x.requires_grad_(True)",
                "bn.train()",
                "bn(x).pow(3).sum().backward()",
                "xr = x.detach().requires_grad_(True)",
                f"reference = {spec_training_output(ctx, 'xr')}  # the spec's training output",
                "reference.pow(3).sum().backward()",
                "error = ((x.grad - xr.grad).norm() / xr.grad.norm()).item()",
                "print('relative error of x.grad (about 0 when they match):', error)",
            ],
        ),
        details={"explained_by": list(explained_by)},
    )


def explaining_codes(ctx: RunContext) -> tuple[str, ...]:
    """The findings whose measured deviation, put into the reference, reproduces the gradients."""
    from bnconform.probes.explained import explained_behaviour

    codes = explained_behaviour(ctx)[1]
    if not codes:
        return ()
    obs = ctx.probe(model.gradients, True)
    return codes if all(v <= obs.tolerance for v in obs.errors.values()) else ()
