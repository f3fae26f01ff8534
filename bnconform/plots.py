"""Data for the report's plots, computed from probes already run (renderers draw them)."""

from __future__ import annotations

from typing import Any

from bnconform.context import RunContext
from bnconform.errors import UserCodeError
from bnconform.findings import CheckResult
from bnconform.probes import running


def plot_data(ctx: RunContext, checks: list[CheckResult]) -> dict[str, Any]:
    return {"running_stats_trace": running_trace(ctx, checks), "output_comparison": output_comparison(checks)}


def running_trace(ctx: RunContext, checks: list[CheckResult]) -> dict[str, Any] | None:
    status = {c.check_id: c.status.value for c in checks}
    if status.get("running-stats-missing") != "passed":
        return None
    try:
        trace = ctx.probe(running.trace)
    except UserCodeError:
        return None
    if not trace.steps:  # the statistics were unreadable from the start
        return None
    spec = ctx.spec
    pinned = ctx.behaviour().new_weight  # an --init momentum; None (cumulative) is drawn at the spec default
    w = pinned if pinned is not None else spec.new_weight(spec.momentum_default)
    return {
        "channel": 0,
        "steps": trace.steps,
        "implementation": {"mean": trace.mean, "var": trace.var},
        "spec": simulate(spec.running_mean_init, spec.running_var_init, w, trace),
        "inverted": simulate(spec.running_mean_init, spec.running_var_init, 1 - w, trace),
        "batch": {"mean": trace.batch_means, "var": trace.batch_vars},
        "new_weight": {"spec": w, "inverted": 1 - w},
    }


def simulate(mean: float, var: float, w: float, trace: running.Trace) -> dict[str, list[float]]:
    means, variances = [mean], [var]
    for batch_mean, batch_var in zip(trace.batch_means, trace.batch_vars, strict=True):
        means.append((1 - w) * means[-1] + w * batch_mean)
        variances.append((1 - w) * variances[-1] + w * batch_var)
    return {"mean": means, "var": variances}


def output_comparison(checks: list[CheckResult]) -> dict[str, Any] | None:
    for check in checks:
        for finding in check.findings:
            if "expected_values" in finding.details:
                return {
                    "expected": finding.details["expected_values"],
                    "observed": finding.details["observed_values"],
                    "check": check.check_id,
                }
    return None
