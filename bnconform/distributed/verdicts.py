"""The sync checks' judgements, from an Outcome (the registration is in checks/sync.py).

A failed rank is a gate (`requires`): nothing else is judged. The others measure each
property on its own; diagnosis.py folds the consequences (diverging running statistics,
`sync-mismatch`) under the specific cause (not synchronized, wrong weights or counts).
"""

from __future__ import annotations

from bnconform.distributed.expect import TOL
from bnconform.distributed.judge import Outcome, Step, off
from bnconform.registry import Verdict, failed, passed, skipped

VERBS = {"hung": "hung", "raised": "raised", "died": "died"}


def steps(outcome: Outcome) -> list[Step]:
    return [s for sc in outcome.scenarios for s in sc.steps]


def where(step: Step, outcome: Outcome) -> str:
    shards = next(sc.shards for sc in outcome.scenarios if sc.name == step.scenario)
    return f"rank {step.rank} ({step.samples} of {sum(shards)} samples, {step.scenario} shards {list(shards)})"


def rank_failed(outcome: Outcome, repro: str) -> Verdict:
    failures = outcome.failures()
    if not failures:
        return passed(ranks=outcome.world_size)
    parts = [f"rank {r} {VERBS.get(e['kind'], e['kind'])} in {e['what']}: {e['message']}" for r, e in failures.items()]
    return failed(
        "; ".join(parts), expected="every rank finishes every training step",
        observed=", ".join(f"rank {r} {VERBS.get(e['kind'], e['kind'])}" for r, e in failures.items()),
        details={"ranks": {str(r): e for r, e in failures.items()}}, repro=repro,
    )


def not_synchronized(outcome: Outcome, repro: str) -> Verdict:
    pairs = [(s.output, s.output_own_shard) for s in steps(outcome) if s.output_own_shard is not None]
    if pairs and not any(off(own) for _, own in pairs) and any(off(out) for out, _ in pairs):
        worst = max(out for out, _ in pairs)
        return failed(
            "Each rank normalizes with its own shard's statistics: every rank's output equals the class "
            "run on that shard alone, in one process; no statistics are shared between ranks",
            expected="outputs normalized with the mean and variance of the global batch (all ranks)",
            observed=f"per-shard normalization (max relative error vs the global batch {worst:.3g})",
            details={"synchronised_via": via(outcome)}, repro=repro,
        )
    return passed(max_output_error=max((o for o, _ in pairs), default=0.0))


def stats_local_count(outcome: Outcome, repro: str) -> Verdict:
    even = [s for s in steps(outcome) if s.scenario == "even"]
    uneven = [s for s in steps(outcome) if s.scenario != "even"]
    if even and not any(off(s.output) for s in even) and any(off(s.output) for s in uneven):
        bad = max(uneven, key=lambda s: s.output)
        return failed(
            "Ranks are weighted equally when combining statistics: outputs are right with even shards "
            f"and wrong with uneven ones (worst: {where(bad, outcome)})",
            expected="global mean and variance weighted by each rank's sample count",
            observed=f"an equal-weight average of per-rank statistics (relative output error {bad.output:.3g})",
            repro=repro,
        )
    local = [s for s in steps(outcome) if off(s.running_var) and s.running_var_local_count is not None
             and not off(s.running_var_local_count)]
    if local:
        return failed(
            f"The unbiased running variance is corrected with the rank's own count, not the global one "
            f"({where(local[0], outcome)})",
            expected="running_var updated with var * n / (n - 1), n = values per channel over all ranks",
            observed="var * n_rank / (n_rank - 1), n_rank = this rank's values per channel",
            repro=repro,
        )
    return passed()


def grad(outcome: Outcome, repro: str) -> Verdict:
    if any(off(s.output) for s in steps(outcome)):
        return skipped("outputs already differ from the reference; gradients are not judged on their own")
    bad = [s for s in steps(outcome) if off(s.input_grad)]
    summed = [(sc.name, k, e) for sc in outcome.scenarios
              for k, e in (("weight", sc.weight_grad), ("bias", sc.bias_grad)) if off(e)]
    if not bad and not summed:
        return passed(max_input_grad_error=max((s.input_grad for s in steps(outcome)), default=0.0))
    what = (f"the input gradient on {where(bad[0], outcome)} (relative error {bad[0].input_grad:.3g})" if bad
            else f"the {summed[0][1]} gradient summed over ranks ({summed[0][0]} shards)")
    return failed(
        f"Outputs are right but gradients do not flow through the global statistics: {what}",
        expected="the gradient of the full-batch reference (statistics differentiable across ranks)",
        observed="gradients as if the global mean/variance were constants or per-rank"
        if bad else "wrong summed parameter gradients", repro=repro,
    )


def running_stats_diverge(outcome: Outcome, repro: str) -> Verdict:
    for sc in outcome.scenarios:
        counters_differ = len(set(sc.counters)) > 1
        if off(sc.divergence) or counters_differ:
            rows = "; ".join(f"rank {s.rank}: mean {short(s.observed['running_mean'])}, var "
                             f"{short(s.observed['running_var'])}, num_batches_tracked "
                             f"{s.observed['num_batches_tracked']}" for s in sc.steps)
            return failed(
                f"Ranks end the step with different running statistics ({sc.name} shards {list(sc.shards)}): {rows}",
                expected="identical running_mean, running_var and num_batches_tracked on every rank",
                observed=f"a relative spread of {sc.divergence:.3g}" if off(sc.divergence)
                else f"num_batches_tracked {sc.counters}", repro=repro,
            )
    return passed()


def mismatch(outcome: Outcome, repro: str) -> Verdict:
    problems = []
    for s in steps(outcome):
        for label, value in (("output", s.output), ("input gradient", s.input_grad),
                             ("running_mean", s.running_mean), ("running_var", s.running_var)):
            if off(value):
                problems.append(f"{label} on {where(s, outcome)}: relative error {value:.3g}")
        seen, want = s.num_batches_tracked
        if want is not None and seen != want:
            problems.append(f"num_batches_tracked on {where(s, outcome)}: {seen}, expected {want}")
    for sc in outcome.scenarios:
        problems += [f"{k} gradient summed over ranks ({sc.name} shards): relative error {e:.3g}"
                     for k, e in (("weight", sc.weight_grad), ("bias", sc.bias_grad)) if off(e)]
    if not problems:
        return passed(tolerance=TOL)
    return failed(
        f"Distributed training differs from the full-batch reference: {problems[0]}"
        + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
        expected="each rank's slice of the full-batch reference", observed=problems[0],
        details={"problems": problems}, repro=repro,
    )


def via(outcome: Outcome) -> str:
    return next((r.get("via") for r in outcome.gathered.records.values() if r.get("via")), "")


def short(values: list[float] | None) -> str:
    return "none" if values is None else "[" + ", ".join(f"{v:.5g}" for v in values) + "]"
