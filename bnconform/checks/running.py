"""Running statistics: present, buffers, shaped (C,), detached, updated with the right momentum."""

from __future__ import annotations

import math

from bnconform.checks.momentum import momentum_repro
from bnconform.context import RunContext
from bnconform.discover import misregistered
from bnconform.findings import Severity
from bnconform.probes import basics, running
from bnconform.registry import Verdict, check, failed, passed, skipped
from bnconform.repro import attr, axes_expr, fmt, snippet
from bnconform.spec import Spec


@check(
    "running-stats-missing",
    area="running-stats",
    title="Running mean and variance exist",
    severity="error",
    why="Without running statistics eval mode must normalize with batch statistics: predictions depend"
    " on the batch and a batch of one sample breaks.",
    hint="Register running_mean (zeros) and running_var (ones) with self.register_buffer and update them in training.",
    requires=("forward-failed",),
)
def running_stats_missing(ctx: RunContext) -> Verdict:
    if not ctx.spec.track_running_stats:
        return skipped("the spec keeps no running statistics")
    found = ctx.probe(basics.found_tensors)
    missing = [r for r in ("running_mean", "running_var") if not found.has(r)]
    if not missing:
        return passed(**{r: found.slots[r].name for r in ("running_mean", "running_var")})
    return failed(
        f"No {' or '.join(missing)} found by name or by behaviour",
        expected="running_mean and running_var tensors of shape (C,)",
        observed=f"no {' or '.join(missing)} among buffers, parameters and tensor attributes"
        + "".join(f"; {r} is the {found.kind(r)} {found.slots[r].name!r}" for r in ("running_mean", "running_var")
                  if found.has(r)),
        repro=snippet(
            ctx,
            ["print(dict(bn.named_buffers()))", "print({k: v for k, v in vars(bn).items() if hasattr(v, 'shape')})"],
        ),
    )


RUNNING = ("running-stats-missing",)


@check(
    "running-stats-not-buffers",
    area="running-stats",
    title="Running statistics are registered buffers",
    severity="error",
    why="Plain tensor attributes are missing from state_dict (a saved model forgets them) and do not follow"
    " .to(device); Parameters are trained by the optimizer and appear in parameters().",
    hint="Create them with self.register_buffer('running_mean', torch.zeros(C)) and update them in place"
    " (self.running_mean.mul_(1 - m).add_(m * mean)) or by reassigning a tensor to the registered name.",
    requires=RUNNING,
)
def running_stats_not_buffers(ctx: RunContext) -> Verdict:
    found = ctx.probe(basics.found_tensors)
    described = misregistered(found, ("running_mean", "running_var"), "buffer")
    if not described:
        return passed()
    return failed(
        f"Running statistics are not buffers: {described}",
        expected="registered buffers",
        observed=described,
        repro=snippet(ctx, ["print(sorted(bn.state_dict()))  # the running statistics are missing or are Parameters"]),
    )


@check(
    "running-stats-init",
    area="running-stats",
    title="Running statistics start at the spec's initial values",
    severity="warning",
    why="Eval before the first training step, and the first steps of the EMA, depend on the initial values;"
    " a zero running variance divides by sqrt(eps).",
    hint="Initialise running_mean with zeros and running_var with ones (the spec's mean_init / var_init).",
    requires=RUNNING,
)
def running_stats_init(ctx: RunContext) -> Verdict:
    obs = ctx.probe(running.buffers)
    spec = ctx.spec
    inits = {"running_mean": spec.running_mean_init, "running_var": spec.running_var_init}
    wrong = {
        role: values for role, values in obs.init_values.items() if any(abs(v - inits[role]) > 1e-6 for v in values)
    }
    if not wrong:
        return passed()
    observed = "; ".join(f"{role} = {[round(v, 4) for v in values[:4]]}" for role, values in wrong.items())
    return failed(
        f"Initial running statistics differ from the spec: {observed}",
        expected=f"running_mean = {spec.running_mean_init:g}, running_var = {spec.running_var_init:g}",
        observed=observed,
        repro=snippet(
            ctx, [f"print({attr(ctx, 'running_mean', 'running_mean')}, {attr(ctx, 'running_var', 'running_var')})"]
        ),
    )


@check(
    "running-stats-shape",
    area="running-stats",
    title="Running statistics keep shape (C,) through training steps on every rank",
    severity="error",
    why="Buffers that change shape ((C,) -> (1, C) or (1, C, 1, 1)) break state_dict loading into"
    " torch.nn.BatchNorm and broadcast wrongly when the next batch has another rank.",
    hint="Reduce with keepdim=False (or .reshape(C)) before updating, e.g."
    " mean = x.mean(dim=axes); running_mean.mul_(1 - m).add_(m * mean).",
    requires=RUNNING,
)
def running_stats_shape(ctx: RunContext) -> Verdict:
    obs = ctx.probe(running.buffers)
    if not obs.bad_shape:
        return passed()
    observed = "; ".join(f"{role}: {', '.join(shapes)}" for role, shapes in obs.shapes.items())
    name = attr(ctx, "running_mean", "running_mean")
    return failed(
        "Running statistics do not keep shape (C,)",
        expected=f"({ctx.channels},) at init and after every step",
        observed=observed,
        repro=snippet(ctx, [f"print({name}.shape)", "bn.train()", "bn(x)", f"print({name}.shape)"]),
    )


@check(
    "running-stats-grad",
    area="running-stats",
    title="Running statistics carry no autograd history and do not require grad",
    severity="error",
    why="A running buffer that keeps the graph of every batch grows memory without bound and makes the"
    " second backward fail ('Trying to backward through the graph a second time'); one that requires"
    " grad collects gradients from every backward through an eval forward.",
    hint="Update running statistics from detached values (mean.detach()) or under torch.no_grad(), and"
    " register them without requires_grad.",
    requires=RUNNING,
)
def running_stats_grad(ctx: RunContext) -> Verdict:
    obs = ctx.probe(running.buffers)
    if not obs.history:
        return requiring_grad(ctx, obs.requiring_grad) if obs.requiring_grad else passed()
    name = attr(ctx, obs.history[0], obs.history[0])
    return failed(
        f"After a training step with an input that requires grad, {', '.join(obs.history)} keep autograd history",
        expected="requires_grad=False, grad_fn=None",
        observed=f"{', '.join(obs.history)} have a grad_fn",
        repro=snippet(
            ctx, ["x.requires_grad_(True)", "bn.train()", "bn(x)", f"print({name}.grad_fn)  # should be None"]
        ),
    )


def requiring_grad(ctx: RunContext, roles: list[str]) -> Verdict:
    """Buffers that require grad get no history from the step, but a backward through an eval
    forward (fine-tuning in eval mode, a gradient penalty) reaches them."""
    name = attr(ctx, roles[0], roles[0])
    return failed(
        f"{', '.join(roles)} require grad although no training step gave them history:"
        " a backward through an eval forward reaches them",
        expected="requires_grad=False, grad_fn=None",
        observed=f"{', '.join(roles)} have requires_grad=True",
        repro=snippet(ctx, ["bn.train()", "bn(x)", f"print({name}.requires_grad)  # should be False"]),
    )


def estimator_hint(spec: Spec) -> str:
    """running-var-estimator's fix with the estimator the spec in use stores."""
    unbiased = spec.running_var_estimator == "unbiased"
    return (f"The {spec.name} spec stores the {spec.running_var_estimator} batch variance in running_var: update it"
            f" with x.var(dim=axes, unbiased={unbiased}) while normalizing with the {spec.norm_variance} variance.")


def variance_repro(ctx: RunContext) -> str:
    mean, var = attr(ctx, "running_mean", "running_mean"), attr(ctx, "running_var", "running_var")
    axes = axes_expr(ctx)
    return snippet(
        ctx,
        [
            f"start_mean = {mean}.detach().clone().reshape(-1)",
            f"start = {var}.detach().clone().reshape(-1)",
            "bn.train()",
            "bn(x)",
            f"w = (({mean}.detach().reshape(-1) - start_mean) / (x.mean(dim={axes}) - start_mean)).mean()",
            f"stored = ({var}.detach().reshape(-1) - (1 - w) * start) / w",
            "print('stored batch variance:', stored)",
            f"print('biased:  ', x.var(dim={axes}, unbiased=False))",
            f"print('unbiased:', x.var(dim={axes}, unbiased=True))",
        ],
    )


@check(
    "running-stats-not-updated",
    area="running-stats",
    title="A training step updates the running statistics",
    severity="error",
    why="Running statistics that never move leave eval mode normalizing with their initial values (0 and 1),"
    " and ones that skip steps lag behind training: the trained model's predictions are wrong.",
    hint="In training mode, blend the batch statistics into running_mean/running_var on every forward, after"
    " computing them.",
    requires=RUNNING,
)
def running_stats_not_updated(ctx: RunContext) -> Verdict:
    if ctx.spec.train_uses == "running":
        return skipped("the spec's statistics are frozen (momentum-default checks they do not move)")
    if reason := ctx.probe(running.running_layout):
        return skipped(f"cannot be measured: {reason}")
    update = ctx.probe(running.momentum).default
    if update.moved:
        return passed(new_weight=update.new_weight)
    if not update.readable or math.isnan(update.new_weight):
        return skipped("cannot be measured: the running statistics could not be read after a step")
    later = ctx.probe(running.first_moving_step)
    if later is not None and later > 1:  # step 1 again moved by less than a weight of MOVED: not moved
        return skips_steps(ctx, later)
    return failed(
        "The running mean did not move after a training step",
        expected="running statistics move toward the batch statistics",
        observed="unchanged",
        repro=momentum_repro(ctx),
    )


def skips_steps(ctx: RunContext, moved_on: int) -> Verdict:
    mean, var = attr(ctx, "running_mean", "running_mean"), attr(ctx, "running_var", "running_var")
    return failed(
        f"The running statistics did not move on the first training step; they first moved on step {moved_on}"
        " of the same batch",
        expected="running statistics move toward the batch statistics on every training step",
        observed=f"unchanged after step 1, moved on step {moved_on}",
        repro=snippet(ctx, [
            "bn.train()",
            f"for step in range(1, {moved_on + 1}):",
            f"    before = {mean}.detach().clone(), {var}.detach().clone()",
            "    bn(x)",
            f"    print('step', step, 'moved:', not torch.equal(before[0], {mean}.detach())"
            f" or not torch.equal(before[1], {var}.detach()))",
        ]),
    )


UPDATES = RUNNING


@check(
    "running-var-estimator",
    area="running-stats",
    title="The running variance uses the spec's estimator",
    severity="warning",
    why="PyTorch stores the unbiased variance (n/(n-1)) in running_var while most frameworks store the"
    " biased one; eval outputs then differ most for small batches and feature maps.",
    hint="Store the estimator the spec names (Expected): PyTorch and tf.keras's fused path store the unbiased"
    " variance (x.var(dim=axes, unbiased=True)), Keras, Flax and most others the biased one (unbiased=False).",
    requires=UPDATES,
)
def running_var_estimator(ctx: RunContext) -> Verdict:
    if ctx.spec.train_uses == "running":
        return skipped("the spec's statistics are frozen: no variance is mixed in")
    if reason := ctx.probe(running.running_layout):
        return skipped(f"cannot be measured: {reason}")
    update = ctx.probe(running.momentum).default
    if not update.readable:
        return skipped("cannot be measured: the running statistics could not be read after a step")
    n = update.values_per_channel
    observed, expected = update.var_tracks, ctx.spec.running_var_estimator
    if observed == expected:
        return passed(ratio=update.var_ratio, weight=update.var_weight)
    if observed == "unchanged":
        return skipped("cannot be measured: running_var does not move in the first training step")
    spec_ratio = fmt(n / (n - 1) if expected == "unbiased" else 1.0)
    if observed == "std":
        message = "running_var is updated with the batch standard deviation, not the variance"
    elif observed == "other":
        message = (
            f"running_var's update fits no estimator: at the running mean's weight {fmt(update.new_weight)} it"
            f" stores {fmt(update.var_ratio)} times the biased batch variance (biased 1, unbiased {fmt(n / (n - 1))})"
        )
    else:
        message = f"running_var is updated with the {observed} batch variance; the spec stores the {expected} one"
    return failed(
        message,
        expected=f"{expected} (ratio to the biased variance {spec_ratio}, n={n})",
        observed=f"{observed} (ratio {fmt(update.var_ratio)})",
        repro=variance_repro(ctx),
        hint=estimator_hint(ctx.spec),
        severity=Severity.WARNING,
        details={"tracks": observed, "ratio": update.var_ratio, "weight": update.var_weight},
    )


@check(
    "num-batches-tracked",
    area="running-stats",
    title="num_batches_tracked counts training steps",
    severity="warning",
    why="PyTorch's momentum=None (cumulative average) and checkpoint tools read num_batches_tracked; a"
    " missing or wrong counter breaks state_dict compatibility and cumulative averaging.",
    hint="register_buffer('num_batches_tracked', torch.tensor(0, dtype=torch.long)) and add 1 on every"
    " training step (also under no_grad), never in eval.",
    requires=RUNNING,
)
def num_batches_tracked(ctx: RunContext) -> Verdict:
    if not ctx.spec.num_batches_tracked:
        return skipped("the spec has no batch counter")
    obs = ctx.probe(running.counter)
    plain = obs.kind != "tensor"
    if obs.value == obs.expected and not plain:
        return passed(value=obs.value)
    observed = "no counter found" if obs.value is None else f"{obs.value:g}"
    if obs.value is None:
        message = "No num_batches_tracked counter found"
    elif plain:
        message = (f"num_batches_tracked is a plain Python {obs.kind} ({observed} after {obs.steps}), not a"
                   " registered buffer: state_dict does not save it and tensor code cannot read it")
        observed = f"Python {obs.kind} {observed}"
    else:
        message = f"After {obs.steps}, num_batches_tracked is {observed}"
    return failed(
        message,
        expected=f"a long tensor buffer holding {obs.expected}" if plain else str(obs.expected),
        observed=observed,
        severity=Severity.INFO if obs.value is None else None,
        repro=snippet(
            ctx,
            [
                "bn.train(); bn(x)",
                "with torch.no_grad(): bn(x)",
                "bn.eval(); bn(x)",
                f"print({attr(ctx, 'num_batches_tracked', 'num_batches_tracked')})",
            ],
        ),
    )
