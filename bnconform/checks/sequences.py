"""Long train/eval sequences: the implementation and the spec's reference stay in step.

A hypothesis state machine (bnconform.sequences) drives both through random sequences of
forward steps with and without grad, train()/eval() switches, reset_running_stats() and
state_dict save/load into a fresh instance, with every momentum the class and spec allow.
The reference starts from the implementation's own initial state, and momentum=None is used
only where the class accepts it, so a divergence is about dynamics. Divergences another
finding explains (a wrong momentum, a state_dict that does not round-trip) are folded under
that finding by bnconform.diagnosis; only a forward that cannot run blocks this check.
"""

from __future__ import annotations

from bnconform.context import RunContext
from bnconform.probes import basics
from bnconform.registry import Verdict, check, failed, passed, skipped
from bnconform.repro import snippet
from bnconform.sequence_search import run_sequences
from bnconform.sequences import EXAMPLES, STEPS

# Only what makes the measurement impossible; causes that merely explain a divergence are
# bnconform.diagnosis's CONSEQUENCES table.
REQUIRES = ("forward-failed",)


@check(
    "sequence-mismatch",
    area="sequences",
    title="Random train/eval/no_grad/reset/state_dict sequences match the spec's reference at every step",
    severity="error",
    why="State bugs show only after a particular order of calls (an eval->train switch, a reset, a reload):"
    " single-step probes pass while a real training loop with validation drifts away from the spec.",
    hint="Run the reproduction: it is the shortest sequence of calls that diverges; look at what the last"
    " call changes (running statistics, num_batches_tracked, the mode) and what it should.",
    requires=REQUIRES,
)
def sequence_mismatch(ctx: RunContext) -> Verdict:
    found = ctx.probe(basics.found_tensors)
    if not (found.has("running_mean") and found.has("running_var")):
        return skipped("no running statistics to follow")
    profile = ctx.settings.profile
    divergence = run_sequences(ctx)
    if divergence is None:
        return passed(examples=EXAMPLES.get(profile, 6), max_steps=STEPS.get(profile, 8))
    return failed(
        f"After {divergence.steps} step(s) of the shortest diverging sequence found: {divergence.message}",
        expected="outputs, running statistics and num_batches_tracked equal to the spec's reference after every call",
        observed=divergence.message,
        repro=snippet(ctx, divergence.lines, **divergence.roles),
        details={"sequence": divergence.lines},
    )
