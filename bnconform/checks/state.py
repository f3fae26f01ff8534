"""state_dict: round trip after training and interchange with torch.nn.BatchNorm."""

from __future__ import annotations

from typing import Any

from bnconform.context import RunContext
from bnconform.findings import Severity
from bnconform.probes import basics, model
from bnconform.probes.common import BETA, GAMMA
from bnconform.probes.model import StateDictObservation
from bnconform.registry import Verdict, check, failed, passed
from bnconform.repro import attr, build_line, snippet


@check(
    "state-dict",
    area="state",
    title="state_dict round-trips after training (and loads into/from torch.nn.BatchNorm)",
    severity="error",
    why="Checkpoints that lose or misname running statistics restore a different model; a state_dict that"
    " torch.nn.BatchNorm cannot load blocks swapping implementations and pretrained weights.",
    hint="Keep running statistics in registered buffers named like torch.nn.BatchNorm's (weight, bias,"
    " running_mean, running_var, num_batches_tracked) with shape (C,).",
    requires=("forward-failed",),
)
def state_dict(ctx: RunContext) -> Verdict:
    obs = ctx.probe(model.state_dict)
    if obs.round_trip:
        return failed(
            f"state_dict does not round-trip: {obs.round_trip}",
            expected="a fresh module loaded with the trained state_dict gives the same eval output",
            observed=obs.round_trip,
            repro=snippet(
                ctx,
                [
                    *non_default_affine(ctx),
                    "bn.train(); bn(x); bn(x * 2 + 1)",
                    "saved = bn.state_dict()",
                    build_line(ctx),
                    "fresh.load_state_dict(saved)",
                    "bn.eval(); fresh.eval()",
                    "print('same eval output:', torch.allclose(bn(x), fresh(x)))",
                ],
            ),
        )
    if obs.interop not in ("", "n/a"):
        return failed(
            f"state_dict is not interchangeable with torch.nn.BatchNorm: {obs.interop}",
            expected="loads into and from torch.nn.BatchNorm with the same eval output",
            observed=obs.interop,
            severity=Severity.WARNING,
            details=interop_attribution(obs),
            repro=snippet(
                ctx, ["print(sorted(bn.state_dict()))", "print(sorted(torch.nn.BatchNorm2d(3).state_dict()))"]
            ),
        )
    return passed(interop=obs.interop or "ok")


def non_default_affine(ctx: RunContext) -> list[str]:
    """The probe trains with gamma and beta away from ones and zeros, so that an affine tensor the
    state_dict loses shows in the output; the repro must do the same to show it."""
    found = ctx.probe(basics.found_tensors)
    lines = [f"    {attr(ctx, role, role)}.fill_({value})"
             for role, value in (("weight", GAMMA[0]), ("bias", BETA[0])) if found.has(role)]
    return ["with torch.no_grad():", *lines] if lines else []


STATS = ("running_mean", "running_var")
AFFINE = ("weight", "bias")
COUNTER = "num_batches_tracked"


def interop_attribution(obs: StateDictObservation) -> dict[str, Any]:
    """Which defects can explain a failed load between the class and torch.nn.BatchNorm, from the
    keys the loading module objected to (bnconform.diagnosis reads `explained_by`, `possible_causes`
    and `accounted_for`). Keys under other names (renamed, or nested in a submodule) are the
    finding itself; torch's keys the class lacks or shapes differently point at the defect that
    drops or reshapes them. Nothing measured (values that differ after a load): the table decides."""
    keys = obs.interop_keys
    if keys is None:
        return {}
    # The class's keys torch does not have, and torch's keys the class does not have.
    foreign, lacking = ((keys.unexpected, keys.missing) if obs.interop_loader == "torch"
                        else (keys.missing, keys.unexpected))
    measured = {"missing_keys": list(keys.missing), "unexpected_keys": list(keys.unexpected),
                "mis_shaped_keys": [key for key, _, _ in keys.mis_shaped]}
    shaped = {key for key, _, _ in keys.mis_shaped}
    causes: list[str] = []
    if set(STATS) & set(lacking):
        causes += ["running-stats-not-buffers", "running-stats-missing"]
    if set(STATS) & shaped:
        causes.append("running-stats-shape")
    if set(AFFINE) & set(lacking):
        causes.append("affine-params")
    if COUNTER in set(lacking) | shaped:
        causes.append("num-batches-tracked")
    # Differences no cause above accounts for: other names, or a mis-shaped weight, bias or counter
    # other than through the counter's own finding.
    explained = set(STATS) | set(AFFINE) | {COUNTER}
    unexplained = bool(foreign) or bool((set(lacking) | shaped) - explained) or bool(shaped & set(AFFINE))
    if unexplained or not causes:
        return {**measured, "accounted_for": True}
    return {**measured, "explained_by": causes, "possible_causes": causes}
