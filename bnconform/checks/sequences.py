"""Long train/eval sequences: the implementation and the spec's reference stay in step.

A hypothesis state machine (bnconform.sequences) drives both through random sequences of
forward steps with and without grad, train()/eval() switches, reset_running_stats() and
state_dict save/load into a fresh instance, with every momentum the class and spec allow.
The reference starts from the implementation's own initial state, and momentum=None is used
only where the class accepts it, so a divergence is about dynamics. Divergences another
finding explains (a wrong momentum, a state_dict that does not round-trip) are folded under
that finding by bnconform.diagnosis, among the causes that can produce what was observed (the
finding's details say what differed, in which call, after which kinds of calls); only a forward
that cannot run blocks this check.
"""

from __future__ import annotations

from typing import Any

from bnconform.context import RunContext
from bnconform.probes import basics
from bnconform.registry import Verdict, check, failed, passed, skipped
from bnconform.repro import snippet
from bnconform.sequence_search import run_sequences
from bnconform.sequences import (
    DEFAULT,
    EVAL_FORWARD,
    EVAL_FORWARD_NO_GRAD,
    EXAMPLES,
    RAISED,
    RELOAD,
    RESET,
    STEPS,
    TRAIN_FORWARD,
    TRAIN_FORWARD_NO_GRAD,
    Divergence,
)

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
        details={"sequence": divergence.lines, **observation(ctx, divergence)},
    )


def observation(ctx: RunContext, divergence: Divergence) -> dict[str, Any]:
    """What diverged, in which call, after which kinds of calls, and the causes that can produce
    that (`possible_causes`, honoured by bnconform.diagnosis); none when nothing narrows it."""
    if not divergence.what:  # the sequence did not finish
        return {}
    found = {"differs": divergence.what, "during": divergence.during, "calls": list(divergence.calls)}
    causes = possible_causes(ctx, divergence)
    return {**found, "possible_causes": causes} if causes is not None else found


# How a training output is computed from its batch (and, for a class that normalizes with them,
# the running statistics).
TRAIN_OUTPUT = ("reduction-axes", "running-stats-missing", "train-uses-running-stats", "norm-variance-estimator",
                "eps-placement", "eps-ignored", "eps-default", "affine-apply", "unstable-variance",
                "output-mismatch")
# How an eval output is computed from the running statistics (which matched until this call).
# Statistics in plain attributes keep their dtype through the conversion every sequence starts
# with, so they can make values differ without a reload.
EVAL_OUTPUT = ("reduction-axes", "running-stats-missing", "eval-uses-batch-stats", "eps-placement", "eps-ignored",
               "eps-default", "affine-apply", "running-stats-shape", "running-stats-not-buffers", "output-mismatch")
# How a training step updates the running statistics.
RUNNING_UPDATE = ("reduction-axes", "running-stats-missing", "running-stats-not-updated", "momentum-inverted",
                  "running-stats-not-buffers")
# What a reload into a fresh instance can lose or reshape.
RELOADED = ("running-stats-missing", "running-stats-shape", "running-stats-not-buffers", "affine-params",
            "num-batches-tracked", "state-dict")


def possible_causes(ctx: RunContext, divergence: Divergence) -> list[str] | None:
    """The findings that can produce this divergence, given what differed and which kinds of calls
    the sequence made: e.g. a default momentum never changes a training output, and a state_dict
    that does not round-trip matters only to a sequence that reloads. None (the table decides) for
    a call that raised in a forward or a reset: too many defects end that way."""
    calls, what = set(divergence.calls), divergence.what
    momentum = divergence.roles.get("momentum", DEFAULT)
    causes: list[str] = []
    if what == "output":
        eval_batch = ctx.spec.eval_uses == "batch"
        causes += TRAIN_OUTPUT if divergence.during in (TRAIN_FORWARD, TRAIN_FORWARD_NO_GRAD) or eval_batch \
            else EVAL_OUTPUT
    elif what in ("running_mean", "running_var"):
        causes += RUNNING_UPDATE
        causes += ["momentum-default"] if momentum == DEFAULT else ["momentum-ignored"]
        if what == "running_var":
            causes.append("running-var-estimator")
        if momentum is None:
            causes.append("num-batches-tracked")  # the cumulative average divides by the counter
        if divergence.size_differs:
            causes.append("running-stats-shape")
    elif what == "num_batches_tracked":
        causes.append("num-batches-tracked")
    elif what == RAISED and divergence.during == RELOAD:
        causes += RELOADED
    else:
        return None
    if RELOAD in calls:
        causes += RELOADED
    if RESET in calls:
        causes.append("running-stats-init")  # reset to other values than the class started from
    if calls & {EVAL_FORWARD, EVAL_FORWARD_NO_GRAD}:
        causes.append("eval-updates-running-stats")
    if calls & {TRAIN_FORWARD_NO_GRAD, EVAL_FORWARD}:
        causes.append("mode-follows-grad")  # the mode read from torch.is_grad_enabled()
    return list(dict.fromkeys(causes))
