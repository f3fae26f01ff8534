"""Driving the sequence state machine (bnconform.sequences): a fixed tour through every rule
first, shrunk greedily when it diverges, then random sequences shrunk by hypothesis.

The default profile's walks run as ONE guarded call each (a worker thread per call would
cost more than the steps themselves); the thorough profile's long search guards each call.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Verbosity, seed, settings
from hypothesis.stateful import run_state_machine_as_test

from bnconform.context import RunContext
from bnconform.errors import UserCodeError
from bnconform.probes.devices import isolated
from bnconform.search_determinism import without_local_constants
from bnconform.sequences import EXAMPLES, STEPS, Divergence, machine, momenta

Step = tuple[str, dict[str, Any]]


def forward_step(salt: int, grad: bool = True, batch: int = 3, scale: float = 3.0, shift: float = 1.5) -> Step:
    return "forward", {"salt": salt, "batch": batch, "scale": scale, "shift": shift, "grad": grad}


TOUR: list[Step] = [
    # A fixed walk through every rule, each one right after a training step changed the state:
    # cheap, deterministic coverage for the default profile before any random exploration.
    forward_step(1), forward_step(2, grad=False, batch=2, scale=0.5, shift=-2.0),
    ("eval_mode", {}), forward_step(3), forward_step(4, grad=False),
    ("train_mode", {}), forward_step(5, batch=4, scale=1.0, shift=0.0), ("reload", {}), forward_step(6),
    ("reset_running_stats", {}), forward_step(7), forward_step(8, scale=0.5),
    ("eval_mode", {}), ("reload", {}), forward_step(9, grad=False), ("train_mode", {}), forward_step(10),
]


def replay(ctx: RunContext, momentum: object, steps: list[Step]) -> Divergence | None:
    """Run `steps` on one fresh machine, all in ONE guarded call (a worker thread per call
    would cost more than the steps); the divergence, or None when every step matched."""
    divergence = Divergence()
    sequence = machine(ctx, divergence)()
    sequence.direct = True

    def walk() -> bool:
        try:
            sequence.build(momentum)
            for name, kwargs in steps:
                if name != "reset_running_stats" or callable(getattr(sequence.module, name, None)):
                    getattr(sequence, name)(**kwargs)
        except AssertionError:
            return False
        return True

    try:
        matched = isolated(ctx, "a train/eval sequence", walk)
    except UserCodeError as error:  # a hang (timeout) of the whole sequence
        return Divergence(["# the sequence below did not finish"], str(error), {})
    return None if matched else divergence


def shrink(ctx: RunContext, momentum: object, steps: list[Step]) -> Divergence:
    """Greedily drop steps while the sequence still diverges (the tour is short: at most ~20 replays)."""
    i = len(steps) - 1
    while i >= 0:
        shorter = steps[:i] + steps[i + 1:]
        if replay(ctx, momentum, shorter) is not None:
            steps = shorter
        i -= 1
    found = replay(ctx, momentum, steps)
    assert found is not None
    return found


def run_sequences(ctx: RunContext) -> Divergence | None:
    """The tour for every momentum, then random sequences; the shortest divergence, or None."""
    for momentum in momenta(ctx):
        if replay(ctx, momentum, TOUR) is not None:
            return shrink(ctx, momentum, TOUR)
    return explore(ctx)


def explore(ctx: RunContext) -> Divergence | None:
    """Random train/eval/no_grad/reset/reload sequences, shrunk by hypothesis. The default
    profile's few short examples run as one guarded call; thorough's long run guards each call."""
    divergence = Divergence()
    profile = ctx.settings.profile
    config = settings(max_examples=EXAMPLES.get(profile, 4), stateful_step_count=STEPS.get(profile, 8),
                      deadline=None, database=None, suppress_health_check=list(HealthCheck),
                      print_blob=False, report_multiple_bugs=False, verbosity=Verbosity.quiet)
    sequence = seed(ctx.settings.seed)(machine(ctx, divergence))
    sequence.direct = profile == "default"

    def search() -> bool:
        try:
            with without_local_constants():
                run_state_machine_as_test(sequence, settings=config)
        except AssertionError:
            return False
        return True

    try:
        matched = isolated(ctx, "random train/eval sequences", search) if sequence.direct else search()
    except UserCodeError as error:
        return Divergence(["# random sequences did not finish"], str(error), {})
    return None if matched else divergence
