"""Prerequisites: the class builds, runs, and accepts the inputs the spec defines."""

from __future__ import annotations

from bnconform.context import RunContext
from bnconform.findings import Severity
from bnconform.probes import basics, modes
from bnconform.registry import Verdict, check, failed, passed
from bnconform.repro import attr, snippet


@check(
    "construct-failed",
    area="construction",
    title="The class can be constructed with the spec's arguments",
    severity="error",
    why="Nothing else can be checked, and users of the class hit the same error.",
    hint="Make the constructor accept the number of features (and eps/momentum keywords), or pass the"
    " missing values with --init KEY=VALUE.",
)
def construct_failed(ctx: RunContext) -> Verdict:
    call = ctx.probe(basics.construction).call
    return passed(construction=call)


@check(
    "forward-failed",
    area="construction",
    title="A training-mode forward returns a finite tensor of the input's shape",
    severity="error",
    why="A forward that raises, hangs or returns NaN on a well-conditioned batch breaks training outright.",
    hint="Run the reproduction and fix the exception; check shapes of the statistics (keepdim) and the"
    " dtype/device of tensors created inside forward. Probe inputs follow the spec's layout (channel axis 1"
    " for pytorch/onnx/mxnet/paddle, -1 for keras/flax): choose the --spec whose layout your class uses.",
    requires=("construct-failed",),
)
def forward_failed(ctx: RunContext) -> Verdict:
    domain = ctx.domain
    shape = list(ctx.layout_shape(domain.probe_rank))
    measured = {"dtype": domain.dtype, "input_shape": shape, "domain": domain.summary()}
    if domain.float64_error:
        measured["float64"] = domain.float64_error
    return passed(**measured)


@check(
    "input-rank-unsupported",
    area="construction",
    title="The class accepts every input rank of the kind of data it handles",
    severity="warning",  # the other rank raises: loud, and a class written for (N, C) alone is correct there
    why="A BatchNorm that handles (N, C) but not (N, C, L), or (N, C, H, W) and (N, C) but not sequences,"
    " fails on the first model that feeds it the other shape (it raises; nothing goes wrong silently)."
    " Rank-specific layers are fine: BatchNorm2d takes only (N, C, H, W), BatchNorm1d both (N, C) and (N, C, L).",
    hint="Compute the reduction axes from the input's rank (all axes except the channel axis) rather than"
    " for fixed ranks. A class written for channels-last input, (N, L, C) say, is checked with a spec whose"
    " channel axis is -1: `bnconform infer` writes one.",
    requires=("forward-failed",),
)
def input_rank_unsupported(ctx: RunContext) -> Verdict:
    domain = ctx.domain
    missing = missing_ranks(domain.ranks, ctx.ranks, ctx.spec.rank_groups)
    if not missing:
        return passed(accepted=list(domain.ranks), rejected=sorted(domain.rejected))
    rank = missing[0]
    groups = [g for g in ctx.spec.rank_groups if set(g) & set(domain.ranks) and not set(g) <= set(domain.ranks)]
    reasons = "; ".join(f"rank {r}: {domain.rejected[r]}" for r in missing)
    return failed(
        f"Accepts ranks {list(domain.ranks)} but rejects rank {', '.join(map(str, missing))} of the same kind of"
        f" data ({', '.join(str(list(g)) for g in groups)} go together): {reasons}",
        expected=f"ranks {sorted(set().union(*map(set, groups)) | set(domain.ranks))} accepted",
        observed=f"accepted {list(domain.ranks)}, rejected {sorted(domain.rejected)}",
        repro=snippet(ctx, ["bn.train()", "bn(x)  # raises"], shape=ctx.shape(rank)),
        details={"rejected": {str(k): v for k, v in domain.rejected.items()}, "accepted": list(domain.ranks)},
    )


def missing_ranks(accepted: tuple[int, ...], tried: tuple[int, ...], groups: tuple[tuple[int, ...], ...]) -> list[int]:
    """Rejected ranks that belong to a group of which the class accepts another rank.

    The spec's rank groups say which ranks go together ((2, 3) for BatchNorm1d's (N, C) and
    (N, C, L)); a class accepting one whole group is a rank-specific layer, not a defect.
    """
    missing = set()
    for group in groups:
        if set(group) & set(accepted):
            missing |= {r for r in group if r in tried and r not in accepted}
    return sorted(missing)


@check(
    "batch-size-constraint",
    area="construction",
    title="Training accepts every batch size",
    severity="warning",
    why="A layer that needs, say, an even batch (ghost/virtual-batch BatchNorm) fails on the last, smaller"
    " batch of an epoch and at inference-time fine-tuning with odd batch sizes.",
    hint="Handle a batch that does not split evenly (a smaller last virtual batch), or document the"
    " constraint and drop_last=True in the DataLoader.",
    requires=("forward-failed",),
)
def batch_size_constraint(ctx: RunContext) -> Verdict:
    domain = ctx.domain
    if not domain.batch_constraint:
        return passed(batch=domain.batch)
    n = min(domain.batch_rejected)
    return failed(
        f"At rank {domain.probe_rank}, {domain.batch_constraint}: N={n} raised {domain.batch_rejected[n]}",
        expected="any batch size with more than one value per channel",
        observed=f"{domain.batch_constraint} (rejected N in {sorted(domain.batch_rejected)})",
        repro=snippet(ctx, ["bn.train()", "bn(x)  # raises"], shape=ctx.shape(domain.probe_rank, n)),
        details={"rejected": {str(k): v for k, v in domain.batch_rejected.items()}},
    )


@check(
    "batch-size-one",
    area="construction",
    title="Training on one value per channel behaves as the spec says",
    severity="warning",
    why="With one value per channel the batch variance is 0 (biased) or 0/0 (unbiased): PyTorch raises"
    " rather than silently normalizing to beta and writing NaN into running_var. An error, not a"
    " warning, when the output or the running statistics become NaN/inf.",
    hint="Raise ValueError('Expected more than 1 value per channel when training') when"
    " N * prod(spatial) == 1, as torch.nn.BatchNorm does (or follow your spec's batch_of_one rule).",
    requires=("forward-failed",),
)
def batch_size_one(ctx: RunContext) -> Verdict:
    obs = ctx.probe(modes.batch_of_one)
    expected = ctx.spec.batch_of_one
    body = ["bn.train()", "y = bn(x)", "print(y)"]
    corrupt = not obs.raised and not (obs.output_finite and obs.running_finite)
    if expected == "error" and obs.raised:
        return passed(observed=obs.raised)
    if expected == "allowed" and not obs.raised and not corrupt:
        return passed(observed="finite output")
    observed = f"raised {obs.raised}" if obs.raised else non_finite(obs) if corrupt else "returned an output silently"
    if corrupt and not obs.running_finite:
        body.append(f"print({attr(ctx, 'running_mean', 'running_mean')}, {attr(ctx, 'running_var', 'running_var')})")
    return failed(
        f"Training with one value per channel (input {list(obs.shape)}) {observed}",
        expected="raises an error" if expected == "error" else "returns a finite output",
        observed=observed,
        severity=Severity.ERROR if corrupt else None,
        repro=snippet(ctx, body, shape=obs.shape),
    )


def non_finite(obs: modes.BatchOfOne) -> str:
    """Which of the two went NaN/inf: the output, the running statistics, or both."""
    where = [what for what, finite in (("returned NaN/inf", obs.output_finite),
                                       ("wrote NaN/inf into the running statistics", obs.running_finite))
             if not finite]
    return " and ".join(where)
