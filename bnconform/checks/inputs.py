"""What the class does outside its output: writes into its input, changes global torch state."""

from __future__ import annotations

from bnconform.context import RunContext
from bnconform.probes import inputs
from bnconform.registry import Verdict, check, failed, passed, skipped
from bnconform.repro import snippet

SHOWN_CALLS = 6  # calls named in a finding's observed line; details list them all


@check(
    "input-modified",
    area="construction",
    title="A forward leaves its input tensor unchanged",
    severity="error",
    why="Callers reuse their tensors: a BatchNorm that normalizes its input in place corrupts the"
    " residual branch, the next layer's skip connection or the batch the training loop logs, and"
    " autograd may fail later with 'modified by an inplace operation'.",
    hint="Compute into new tensors (x - mean, not x.sub_(mean)); if memory matters, make the in-place"
    " variant an explicit option that is off by default.",
    requires=("forward-failed",),
)
def input_modified(ctx: RunContext) -> Verdict:
    writes = ctx.probe(inputs.modified_inputs)
    if not writes.calls:
        return passed()
    what, change = writes.calls[0]
    # Call labels hold commas ("cpu float32 module, float16 input"): "; " keeps them apart
    calls = "; ".join(call for call, _ in writes.calls[:SHOWN_CALLS])
    more = len(writes.calls) - SHOWN_CALLS
    return failed(
        f"The {what} wrote into its input tensor: {change}",
        expected="the input is unchanged after the call",
        observed=f"input changed by: {calls}" + (f" (and {more} more calls)" if more > 0 else ""),
        repro=snippet(ctx, ["x0 = x.clone()", "bn.train()", "y = bn(x)",
                            "print('input changed:', not torch.equal(x, x0))"]),
        details={"calls": dict(writes.calls)},
    )


@check(
    "global-state-changed",
    area="construction",
    title="Importing the class leaves torch's global settings alone",
    severity="info",
    why="A module that changes grad mode, the default dtype or device, flush-denormal, deterministic"
    " algorithms, anomaly mode, the thread count or the global RNG at import changes the numbers of"
    " every model in the process that imports it. bnconform undoes the change before checking, so"
    " the other findings describe the class itself.",
    hint="Move the setting into the code that needs it, scoped (with torch.no_grad(): ...,"
    " torch.autocast, a local torch.Generator) instead of changing it for the whole process at import.",
    requires=("construct-failed",),  # reported with the class's other findings, not instead of them
)
def global_state_changed(ctx: RunContext) -> Verdict:
    from bnconform.supervise.session import CURRENT, describe_changes

    changes = CURRENT.import_changes
    if changes is None:
        return skipped("the import was not fenced (an in-process run, not the supervised worker)")
    if not changes:
        return passed()
    words = describe_changes(changes)
    return failed(words["message"], expected=words["expected"], observed=words["observed"], details=words["details"])
