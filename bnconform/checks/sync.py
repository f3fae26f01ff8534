"""SyncBatchNorm across processes: the ranks of one global batch behave like one BatchNorm.

These checks judge the outcome of a multi-process run (bnconform.distributed). In an
ordinary single-process run there is none: every check here is skipped with the reason,
never passed. They require only gates: a class that cannot be built or run in one process,
or a rank that did not finish, leaves nothing to compare (blocked, root cause first);
consequences of one sync defect are folded under it by diagnosis.py.
"""

from __future__ import annotations

from collections.abc import Callable

from bnconform.context import RunContext
from bnconform.registry import Verdict, check, skipped

SKIP_REASON = "runs with --world-size N or --distributed"
GATED = ("construct-failed", "forward-failed", "sync-rank-failed")  # nothing to compare without them


def judged(verdict: Callable[..., Verdict]) -> Callable[[RunContext], Verdict]:
    """Run `verdict(outcome, repro)` when a distributed outcome is current, else skip."""

    def fn(_ctx: RunContext) -> Verdict:
        from bnconform.distributed.judge import current

        outcome = current()
        if outcome is None:
            return skipped(SKIP_REASON)
        return verdict(outcome, outcome.extra.get("repro", ""))

    fn.__name__ = verdict.__name__
    return fn


def _verdicts():  # noqa: ANN202 - lazy: importing the checks must not import the distributed package's torch parts
    from bnconform.distributed import verdicts

    return verdicts


def lazily(name: str) -> Callable[[RunContext], Verdict]:
    fn = judged(lambda outcome, repro: getattr(_verdicts(), name)(outcome, repro))
    fn.__name__ = name
    return fn


check(
    "sync-rank-failed", area="distributed", severity="error", requires=("construct-failed", "forward-failed"),
    title="Every rank finishes every distributed training step",
    why="A rank that raises, dies or waits in a collective its peers never join stops the whole job; "
    "under torch.distributed it usually shows as a timeout far from the line at fault.",
    hint="Call the same collectives, in the same order, on every rank, whatever its shard size; read the "
    "traceback of the first failing rank in the report.",
)(lazily("rank_failed"))

check(
    "sync-not-synchronized", area="distributed", severity="error", requires=GATED,
    title="Ranks normalize with statistics shared over the global batch",
    why="A BatchNorm used as SyncBatchNorm that normalizes each rank with its own shard's statistics "
    "trains as if the batch were the per-device batch: small per-device batches make training noisy.",
    hint="All-reduce the per-channel sum, sum of squares and count over the process group (or take "
    "process_group= and use it), then normalize with the global mean and variance.",
)(lazily("not_synchronized"))

check(
    "sync-stats-local-count", area="distributed", severity="error",
    requires=GATED,
    title="Global statistics weight ranks by their sample count; the unbiased correction uses the global count",
    why="With uneven shards (the last batch of an epoch, drop_last=False) an equal-weight average of per-rank "
    "statistics is not the batch's statistics, and n_rank/(n_rank - 1) inflates the running variance.",
    hint="All-reduce sums and counts, not means; divide by the global count, and correct the running "
    "variance with n_global / (n_global - 1).",
)(lazily("stats_local_count"))

check(
    "sync-grad", area="distributed", severity="error",
    requires=GATED,
    title="Gradients flow through the global statistics (differentiable collectives)",
    why="dist.all_reduce is not differentiable: statistics reduced with it are constants to autograd, so "
    "input gradients miss the mean/variance terms and training diverges from single-device training.",
    hint="Use a differentiable all-reduce (a custom autograd.Function that all-reduces the gradient in "
    "backward, or torch.distributed.nn.functional.all_reduce), or torch.nn.SyncBatchNorm.",
)(lazily("grad"))

check(
    "sync-running-stats-diverge", area="distributed", severity="error",
    requires=GATED,
    title="Every rank ends with the same running statistics and num_batches_tracked",
    why="Checkpoints are saved from rank 0 and evaluation runs on any rank: running statistics that differ "
    "between ranks make evaluation depend on which rank did it.",
    hint="Update running_mean/running_var from the globally reduced statistics on every rank (not only on "
    "rank 0, not from local statistics), and count num_batches_tracked on every rank.",
)(lazily("running_stats_diverge"))

check(
    "sync-mismatch", area="distributed", severity="error",
    requires=GATED,
    title="Each rank's outputs, gradients and running statistics match the full-batch reference",
    why="Distributed training must compute what one BatchNorm computes on the whole global batch.",
    hint="Compare the reduced statistics with the full batch's on one channel; the report's per-rank table "
    "shows which rank and which quantity differ.",
)(lazily("mismatch"))
