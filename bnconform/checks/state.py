"""state_dict: round trip after training and interchange with torch.nn.BatchNorm."""

from __future__ import annotations

from bnconform.context import RunContext
from bnconform.findings import Severity
from bnconform.probes import model
from bnconform.registry import Verdict, check, failed, passed
from bnconform.repro import build_line, snippet


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
            repro=snippet(
                ctx, ["print(sorted(bn.state_dict()))", "print(sorted(torch.nn.BatchNorm2d(3).state_dict()))"]
            ),
        )
    return passed(interop=obs.interop or "ok")
