"""Train/eval semantics: which statistics each mode uses, which mode updates them."""

from __future__ import annotations

from bnconform.context import RunContext
from bnconform.probes import modes, running
from bnconform.registry import Verdict, check, failed, passed, skipped
from bnconform.repro import attr, axes_expr, snippet

RUNNING = ("running-stats-missing",)


def eval_repro(ctx: RunContext) -> str:
    return snippet(
        ctx,
        [
            "bn.eval()",
            "y1 = bn(x)",
            "y2 = bn(x[:2])",
            "print('same sample, different batch -> same output?', torch.allclose(y1[:2], y2))",
        ],
    )


@check(
    "mode-follows-grad",
    area="modes",
    title="Train/eval behaviour follows module.training, not torch.is_grad_enabled()",
    severity="error",
    why="A switch on torch.is_grad_enabled() treats validation without no_grad as training (updating"
    " running statistics with validation data) and training steps under no_grad as eval.",
    hint="Use `if self.training:` to choose batch or running statistics, not torch.is_grad_enabled().",
    requires=RUNNING,
)
def mode_follows_grad(ctx: RunContext) -> Verdict:
    if reason := ctx.probe(running.running_layout):
        return skipped(f"cannot be measured: {reason}")
    obs = ctx.probe(modes.modes)
    problems = []
    if obs.train_grad.uses != obs.train_no_grad.uses:
        problems.append(f"train mode under no_grad uses {obs.train_no_grad.uses} statistics")
    if ctx.spec.update_under_no_grad and obs.train_grad.updates and not obs.train_no_grad.updates:
        problems.append("train mode under no_grad does not update the running statistics")
    if obs.eval_grad.uses != obs.eval_no_grad.uses:
        problems.append(f"eval mode with grad enabled uses {obs.eval_grad.uses} statistics")
    if not problems:
        return passed()
    return failed(
        "Behaviour changes with torch.is_grad_enabled(): " + "; ".join(problems),
        expected="train mode: batch statistics and updates, with or without grad; eval mode: running statistics",
        observed="; ".join(problems),
        repro=snippet(
            ctx,
            [
                "bn.eval()",
                "y_grad = bn(x)",
                "with torch.no_grad():",
                "    y_nograd = bn(x)",
                "print('same output?', torch.allclose(y_grad, y_nograd))",
                f"print('batch mean of eval output:', y_grad.mean(dim={axes_expr(ctx)}))",
            ],
        ),
    )


@check(
    "eval-uses-batch-stats",
    area="modes",
    title="Eval mode normalizes with the running statistics",
    severity="error",
    why="With batch statistics in eval, a prediction depends on the other samples in the batch and a"
    " single-sample batch is normalized to beta: deployed models give different answers than validation.",
    hint="Branch on self.training: in eval use running_mean/running_var.",
    requires=RUNNING,
)
def eval_uses_batch_stats(ctx: RunContext) -> Verdict:
    if reason := ctx.probe(running.running_layout):
        return skipped(f"cannot be measured: {reason}")
    obs = ctx.probe(modes.modes)
    uses = obs.eval_no_grad.uses
    if uses == ctx.spec.eval_uses:
        return passed(uses=uses)
    if uses == "other":
        return skipped("the eval output matches neither batch nor running statistics")
    return failed(
        f"Eval mode normalizes with {uses} statistics (measured under torch.no_grad(), as inference runs)",
        expected=f"{ctx.spec.eval_uses} statistics",
        observed=f"{uses} statistics",
        repro=eval_repro(ctx),
    )


@check(
    "eval-updates-running-stats",
    area="modes",
    title="Eval mode leaves the running statistics unchanged",
    severity="error",
    why="Updating running statistics during validation leaks validation data into the model and makes"
    " evaluation results depend on how often you evaluate.",
    hint="Update running statistics only when self.training is True.",
    requires=RUNNING,
)
def eval_updates_running_stats(ctx: RunContext) -> Verdict:
    if reason := ctx.probe(running.running_layout):
        return skipped(f"cannot be measured: {reason}")
    obs = ctx.probe(modes.modes)
    updated = [
        label for label, run in (("with grad", obs.eval_grad), ("under no_grad", obs.eval_no_grad)) if run.updates
    ]
    if not updated or ctx.spec.eval_updates_running_stats:
        return passed()
    name = attr(ctx, "running_mean", "running_mean")
    return failed(
        f"An eval-mode forward ({' and '.join(updated)}) changed the running statistics",
        expected="unchanged",
        observed="changed",
        repro=snippet(
            ctx,
            [
                f"before = {name}.clone()",
                "bn.eval()",
                "with torch.no_grad():",
                "    bn(x)",
                f"print('changed:', not torch.equal(before, {name}))",
            ],
        ),
    )
