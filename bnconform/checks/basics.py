"""Prerequisites: the class builds, runs, and accepts the inputs the spec defines."""

from __future__ import annotations

from bnconform.context import RunContext
from bnconform.findings import Severity
from bnconform.probes import basics, modes
from bnconform.registry import Verdict, check, failed, passed
from bnconform.repro import snippet


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
    smoke = ctx.probe(basics.smoke)
    measured = {"dtype": str(smoke.dtype).removeprefix("torch."), "input_shape": list(smoke.input_shape)}
    if smoke.float64_error:
        measured["float64"] = smoke.float64_error
    return passed(**measured)


@check(
    "input-rank-unsupported",
    area="construction",
    title="Every input rank the spec defines is accepted",
    severity="error",
    why="A BatchNorm that only handles (N, C) and (N, C, H, W) fails on sequence data (N, C, L) or"
    " volumes, usually at the first model that uses them.",
    hint="Compute the reduction axes from the input's rank (all axes except the channel axis) instead"
    " of hard-coding the 2-D and 4-D cases.",
    requires=("forward-failed",),
)
def input_rank_unsupported(ctx: RunContext) -> Verdict:
    support = ctx.probe(basics.rank_support)
    if not support.rejected:
        return passed(accepted=list(support.accepted))
    ranks = ", ".join(f"rank {r} ({err})" for r, err in support.rejected.items())
    rank = min(support.rejected)
    return failed(
        f"Inputs of rank {sorted(support.rejected)} are rejected: {ranks}",
        expected=f"ranks {list(ctx.ranks)} accepted",
        observed=f"accepted {list(support.accepted)}, rejected {sorted(support.rejected)}",
        repro=snippet(ctx, ["bn.train()", "bn(x)  # raises"], shape=ctx.shape(rank)),
        details={"rejected": {str(k): v for k, v in support.rejected.items()}},
    )


@check(
    "batch-size-one",
    area="construction",
    title="Training on one value per channel behaves as the spec says",
    severity="warning",
    why="With one value per channel the batch variance is 0 (biased) or 0/0 (unbiased): PyTorch raises"
    " rather than silently normalizing to beta and writing NaN into running_var.",
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
    observed = (
        f"raised {obs.raised}"
        if obs.raised
        else (
            "returned NaN/inf or wrote NaN/inf into the running statistics"
            if corrupt
            else "returned an output silently"
        )
    )
    return failed(
        f"Training with one value per channel (input {list(obs.shape)}) {observed}",
        expected="raises an error" if expected == "error" else "returns a finite output",
        observed=observed,
        severity=Severity.ERROR if corrupt else None,
        repro=snippet(ctx, body, shape=obs.shape),
    )
