"""Input-domain discovery and probe shapes (issue 8 items 1-3).

The domain is asked of the class by calling it, never read from its name; probe inputs have
pairwise-distinct sizes so broadcasting mistakes cannot pass as other bugs; a finding that
another check *found* blocks nothing.
"""

from __future__ import annotations

import functools
import itertools
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bnconform.probes.domain as domain_probe
from bnconform.api import run_check
from bnconform.construct import Builder
from bnconform.context import LAYOUTS, RunContext, RunSettings, probe_sizes
from bnconform.errors import UserCodeError
from bnconform.probes.domain import (
    BATCH_CANDIDATES,
    Domain,
    batches_to_try,
    constraint,
    first_rejection,
    rule,
)
from bnconform.registry import GATES, all_checks
from bnconform.spec import load_spec
from bnconform.target import load_target
from tests._contexts import context
from tests.wild.hardcoded import ImageBatchNorm

SEEDS = range(int(os.environ.get("BNCONFORM_SEEDS", "3")))  # 3: every probe layout once


class MyBN(nn.BatchNorm2d):
    """A trivial subclass: no 1d/2d/3d in the name, behaves exactly like its base."""


def make_bn1d(num_features: int) -> nn.Module:
    return nn.BatchNorm1d(num_features)


PartialBN3d = functools.partial(nn.BatchNorm3d, eps=1e-5)
CORE = ("forward-failed", "input-rank-unsupported", "batch-size-constraint", "affine-apply", "reduction-axes",
        "train-uses-running-stats", "norm-variance-estimator", "momentum-inverted", "momentum-default",
        "running-var-estimator", "eps-default", "output-mismatch", "grad-mismatch", "state-dict")


def statuses(result: dict) -> dict[str, str]:
    return {c["id"]: c["status"] for c in result["checks"]}


def loud(result: dict) -> list[str]:
    return [f"{f['code']}: {f['message']}" for f in result["findings"] if f["severity"] in ("error", "warning")]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("target", [
    "torch.nn:BatchNorm1d", "torch.nn:BatchNorm2d", "torch.nn:BatchNorm3d", MyBN, make_bn1d, PartialBN3d,
], ids=["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "subclass", "factory", "partial"])
def test_torch_forms_are_clean_and_verified(target: object, seed: int) -> None:
    result = run_check(_as_target(target), seed=seed)
    assert not loud(result)
    status = statuses(result)
    not_passed = {code: status[code] for code in CORE if status[code] != "passed"}
    assert not not_passed, f"core checks that did not pass on a correct class: {not_passed}"
    assert result["summary"]["verdict"] == "pass"


def _as_target(target: object) -> str:
    if isinstance(target, str):
        return target
    name = {MyBN: "MyBN", make_bn1d: "make_bn1d", PartialBN3d: "PartialBN3d"}[target]
    return f"tests.test_domain:{name}"


@pytest.mark.parametrize(("target", "ranks"), [
    ("torch.nn:BatchNorm1d", [2, 3]), ("torch.nn:BatchNorm2d", [4]), ("tests.test_domain:MyBN", [4]),
    ("tests.test_domain:PartialBN3d", [5]), ("tests.wild.rank2:FeatureBatchNorm", [2]),
])
def test_accepted_ranks_are_discovered_by_calling(target: str, ranks: list[int]) -> None:
    domain = run_check(target)["domain"]
    assert domain["ranks"] == ranks
    assert sorted(int(r) for r in domain["rejected"]) == sorted({2, 3, 4, 5} - set(ranks))


def test_an_nc_only_class_gets_exactly_input_rank_unsupported() -> None:
    result = run_check("tests.wild.rank2:FeatureBatchNorm")
    assert [f["code"] for f in result["findings"] if f["severity"] != "info"] == ["input-rank-unsupported"]
    finding = result["findings"][0]
    assert "rejects rank 3" in finding["message"] and finding["details"]["accepted"] == [2]
    assert statuses(result)["momentum-default"] == "passed"  # measured at rank 2, not blocked


def test_an_even_batch_class_gets_the_constraint_and_everything_else() -> None:
    result = run_check("tests.wild.batch:PairedBiasedBatchNorm")
    codes = {f["code"] for f in result["findings"]}
    assert {"batch-size-constraint", "running-var-estimator"} <= codes
    assert result["domain"]["batch"]["constraint"] == "training needs N divisible by 2"
    assert "blocked" not in statuses(result).values()


def test_a_hard_coded_channel_count_is_named() -> None:
    result = run_check("tests.wild.hardcoded:ImageBatchNorm")
    (finding,) = [f for f in result["findings"] if f["code"] == "forward-failed"]
    assert "the channel count 3 is hard-coded" in finding["message"]


class RecordsWidths(ImageBatchNorm):
    widths: list[int] = []

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        RecordsWidths.widths.append(num_features)
        super().__init__(num_features, eps, momentum)


def test_a_pinned_channel_count_is_the_only_one_built_even_when_it_fails() -> None:
    """--init num_features=5 pins C: no other width is built. This class honours the width in its
    parameters, so a 3-channel input fails on it too and nothing is said to be hard-coded."""
    RecordsWidths.widths = []
    result = run_check(RecordsWidths, init={"num_features": 5})
    (finding,) = [f for f in result["findings"] if f["code"] == "forward-failed"]
    assert set(RecordsWidths.widths) == {5} and "hard-coded" not in finding["message"]


class IgnoresItsWidth(nn.Module):
    """Every tensor sized 3 whatever num_features says: only a 3-channel input runs."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, None, None, self.weight, self.bias, training=True)


@pytest.mark.parametrize("pinned", [2, 5])
def test_a_class_that_ignores_a_pinned_width_is_said_to_hard_code_three_channels(pinned: int) -> None:
    result = run_check(IgnoresItsWidth, init={"num_features": pinned})
    (finding,) = [f for f in result["findings"] if f["code"] == "forward-failed"]
    assert f"with 3 channels instead of {pinned} it runs: the channel count 3 is hard-coded" in finding["message"]


@pytest.mark.parametrize(("rejected", "expected"), [
    ({}, ""),
    ({1: "x", 3: "x", 7: "x", 9: "x"}, "training needs N divisible by 2"),
    ({1: "x", 2: "x", 4: "x", 7: "x", 8: "x"}, "training needs N divisible by 3"),
    ({1: "x", 2: "x"}, "training needs N >= 3"),
    ({1: "x"}, "training needs N >= 2"),
    ({7: "x"}, "training rejects N in [7]"),
])
def test_batch_constraint_is_the_simplest_rule(rejected: dict[int, str], expected: str) -> None:
    assert constraint(rejected) == expected


@pytest.mark.parametrize(("seed", "channels"), list(itertools.product(range(6), range(1, 13))))
def test_probe_sizes_are_pairwise_distinct_and_never_c(seed: int, channels: int) -> None:
    sizes = probe_sizes(seed, channels)
    assert len(set(sizes.values())) == len(sizes) and channels not in sizes.values()
    assert min(sizes.values()) >= 2  # no size-1 axis: every axis stays identifiable


def test_layouts_rotate_with_the_seed() -> None:
    assert {tuple(probe_sizes(seed, 5).values()) for seed in range(len(LAYOUTS))} == {
        tuple(layout.values()) for layout in LAYOUTS}


def test_shapes_follow_the_discovered_batch() -> None:
    ctx = RunContext(load_spec("pytorch"), Builder(load_target("tests.wild.batch:PairedBatchNorm")), RunSettings())
    assert ctx.domain.batch % 2 == 0
    assert all(ctx.shape(rank)[0] == ctx.domain.batch for rank in ctx.domain.ranks)
    shape = ctx.shape(5)
    assert len(set(shape)) == len(shape)


def test_requires_only_names_gates() -> None:
    for spec in all_checks():
        assert set(spec.requires) <= GATES, spec.code


def test_a_warning_blocks_nothing() -> None:
    result = run_check("tests.corpus.eps_default:BatchNorm")  # eps-default is a warning
    assert "blocked" not in statuses(result).values()


def test_momentum_is_measured_per_statistic() -> None:
    (finding,) = [f for f in run_check("tests.wild.stats:VarMomentumInvertedBatchNorm")["findings"]
                  if f["code"] == "momentum-inverted"]
    assert finding["details"]["statistics"] == ["running_var"]


def test_a_running_std_is_named_not_skipped() -> None:
    (finding,) = [f for f in run_check("tests.wild.stats:RunningStdBatchNorm")["findings"]
                  if f["code"] == "running-var-estimator"]
    assert "standard deviation" in finding["message"]


def test_global_statistics_are_not_solved_for_momentum() -> None:
    result = run_check("tests.wild.global_stats:GlobalBatchNorm")
    codes = {f["code"] for f in result["findings"]}
    assert {"reduction-axes", "running-stats-shape"} <= codes
    assert not codes & {"momentum-default", "momentum-inverted", "eps-default", "running-stats-missing"}
    assert "per channel" in next(c["reason"] for c in result["checks"] if c["id"] == "running-var-estimator")


def test_explained_output_mismatch_names_its_cause() -> None:
    result = run_check("tests.corpus.eps_placement:BatchNorm")
    (finding,) = [f for f in result["findings"] if f["code"] == "output-mismatch"]
    assert finding["details"]["explained_by"] == ["eps-placement"]


def test_unexplained_output_mismatch_is_its_own_root() -> None:
    (finding,) = [f for f in run_check("tests.corpus.output_mismatch:BatchNorm")["findings"]
                  if f["code"] == "output-mismatch"]
    assert finding["details"]["explained_by"] == [] and finding.get("caused_by") is None


def test_half_precision_is_judged_against_the_class_itself() -> None:
    # A per-sample bug is wrong in every precision: not a dtype problem.
    result = run_check("tests.wild.stats:PerSampleBatchNorm")
    assert statuses(result)["dtype-support"] == "passed"


def test_probe_inputs_use_more_than_three_channels() -> None:
    ctx = RunContext(load_spec("pytorch"), Builder(load_target("torch.nn:BatchNorm2d")), RunSettings())
    assert ctx.channels != 3 and ctx.domain.channels_honoured
    assert isinstance(ctx.build(), torch.nn.Module)


def test_a_class_computing_in_float32_inside_is_judged_in_float32() -> None:
    from bnconform.probes.precision import tolerance_dtype

    target = "tests.fixtures.float32_inside:Float32BatchNorm"
    ctx = RunContext(load_spec("pytorch"), Builder(load_target(target)), RunSettings())
    assert ctx.domain.dtype == "float64" and tolerance_dtype(ctx) == torch.float32
    torch_ctx = RunContext(load_spec("pytorch"), Builder(load_target("torch.nn:BatchNorm2d")), RunSettings())
    assert torch_ctx.domain.dtype == "float64" and tolerance_dtype(torch_ctx) == torch.float64
    result = run_check(target)
    assert not [f for f in result["findings"] if f["severity"] == "error"]
    assert {c["id"]: c["status"] for c in result["checks"]}["affine-apply"] == "passed"


@pytest.mark.parametrize(("rejected", "rule_found"), [
    ({}, (1, 1)),
    ({n: "x" for n in (1, 2, 3, 4, 6, 7, 8, 9)}, (1, 1)),  # nothing trains: no rule separates
    ({1: "x", 3: "x", 7: "x", 9: "x"}, (2, 1)),
    ({1: "x", 2: "x", 3: "x", 6: "x", 7: "x", 9: "x"}, (4, 1)),
    ({1: "x", 2: "x", 3: "x", 4: "x", 6: "x", 7: "x", 9: "x"}, (8, 1)),
    ({1: "x", 2: "x", 3: "x"}, (1, 4)),
    ({2: "x", 7: "x"}, (1, 1)),  # rejected sizes among accepted ones: no rule
    ({1: "x", 7: "x"}, (1, 1)),  # N=1 rejected is no minimum of 2 when 7 is rejected too
    ({1: "x", 3: "x", 4: "x", 7: "x", 9: "x"}, (1, 1)),  # 2, 6, 8 train but 4 does not: no multiple
])
def test_the_batch_rule_is_a_multiple_or_a_minimum(rejected: dict[int, str], rule_found: tuple[int, int]) -> None:
    assert rule(rejected) == rule_found


def test_every_batch_size_rejected_is_said_so() -> None:
    assert constraint(dict.fromkeys(BATCH_CANDIDATES, "x")) == \
        f"training rejects every batch size tried ({sorted(BATCH_CANDIDATES)})"


def domain(**fields: object) -> Domain:
    return Domain(**{"ranks": (4,), "rejected": {}, "probe_rank": 4, "batch": 6, **fields})


def test_a_probe_s_batch_size_moves_into_the_domain() -> None:
    assert domain().batch_near(1) == 1 and domain().batch_near(5) == 5
    even = domain(batch_multiple=2, batch_rejected={1: "x", 3: "x"})
    assert [even.batch_near(n) for n in (1, 2, 3, 5, 8)] == [2, 2, 4, 6, 8]
    at_least_4 = domain(batch_minimum=4, batch_rejected={1: "x", 2: "x", 3: "x"})
    assert [at_least_4.batch_near(n) for n in (1, 4, 9)] == [4, 4, 9]
    odd_rule = domain(batch_rejected={7: "x"})  # no rule: a rejected size falls back to the domain's batch
    assert odd_rule.batch_near(7) == 6 and odd_rule.batch_near(8) == 8


def test_the_domain_summary_and_json_say_what_was_found() -> None:
    plain = domain(ranks=(2, 3))
    assert plain.summary() == "accepts ranks [2, 3]" and plain.channels_honoured
    limited = domain(batch_constraint="training needs N divisible by 2", channel_errors={11: "boom", 1: "no"},
                     rejected={5: "5-d input"}, batch_rejected={3: "odd"})
    assert limited.summary() == "accepts ranks [4]; training needs N divisible by 2; fails with C in [1, 11]"
    assert not limited.channels_honoured
    assert limited.to_json() == {
        "ranks": [4], "rejected": {"5": "5-d input"}, "probe_rank": 4,
        "batch": {"probe": 6, "constraint": "training needs N divisible by 2", "rejected": {"3": "odd"}},
        "channels": {"probe": 5, "honoured": False, "rejected": {"11": "boom", "1": "no"}},
        "dtype": "float64",
    }


def test_a_class_failing_everywhere_is_reported_at_its_preferred_rank_with_the_input_shape() -> None:
    ctx = RunContext(load_spec("pytorch"), Builder(load_target("torch.nn:BatchNorm2d")), RunSettings())
    rejected = {3: UserCodeError("train-mode forward", "3-d", "raised"),
                4: UserCodeError("train-mode forward", "4-d", "raised")}
    error = first_rejection(ctx, rejected)
    assert (error.what, error.detail, error.kind) == (
        f"train-mode forward on input {ctx.layout_shape(4)}", "4-d", "raised")
    nothing = first_rejection(ctx, {})
    assert nothing.detail == "no rank to try" and nothing.what.startswith("train-mode forward on input ")


def test_the_batches_tried_per_rank_avoid_the_channel_count() -> None:
    ctx = RunContext(load_spec("pytorch"), Builder(load_target("torch.nn:BatchNorm2d")), RunSettings())
    tried = batches_to_try(ctx)
    assert tried[0] == ctx.shape_sizes()["N"] and len(tried) == 3 and ctx.channels not in tried[1:]
    assert len(set(tried)) == 3


class PairedFeatureBatchNorm(nn.BatchNorm1d):
    """(N, C) only, and training needs an even batch (pairs of samples)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"expected (N, C), got {x.dim()}-d")
        if self.training and x.shape[0] % 2:
            raise ValueError("training needs an even batch")
        return super().forward(x)


def test_an_nc_only_class_has_its_odd_batch_sizes_rejected_with_n_1_left_to_batch_size_one() -> None:
    ctx = context(PairedFeatureBatchNorm)
    assert ctx.domain.ranks == (2,)
    assert sorted(ctx.domain.batch_rejected) == [3, 7, 9]  # N=1 at rank 2 is batch-size-one's question


def test_an_nc_only_class_gets_its_batch_rule() -> None:
    assert context(PairedFeatureBatchNorm).domain.batch_constraint == "training needs N divisible by 2"


def test_the_rule_is_found_among_the_batch_sizes_tried_at_rank_2_where_n_1_is_not() -> None:
    tried = domain_probe.batch_sizes_tried(2)  # looked up here: older commits lack it (mutation-recheck.py)
    assert 1 not in tried and domain_probe.batch_sizes_tried(3) == BATCH_CANDIDATES
    assert rule({3: "x", 7: "x", 9: "x"}, tried) == (2, 1)
    assert rule({3: "x", 7: "x", 9: "x"}) == (1, 1)  # with N=1 counted as accepted, no multiple fits
    assert constraint(dict.fromkeys(tried, "x"), tried) == f"training rejects every batch size tried ({list(tried)})"


class GhostSixBatchNorm(nn.BatchNorm2d):
    """Ghost batch normalization over virtual batches of 6: training needs N divisible by 6."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] % 6:
            raise ValueError(f"batch {x.shape[0]} is not a multiple of the ghost batch 6")
        return torch.cat([super(GhostSixBatchNorm, self).forward(chunk) for chunk in x.split(6)])


@pytest.mark.parametrize("seed", range(len(LAYOUTS)))
def test_a_batch_size_that_needs_two_factors_is_among_those_tried(seed: int) -> None:
    """6 is the one size tried that is divisible by both 2 and 3: without it a ghost batch of 6
    would read as a class that trains on no batch size at all, at any layout's N."""
    found = context(GhostSixBatchNorm, seed=seed).domain
    assert found.batch_constraint == "training rejects N in [1, 2, 3, 4, 7, 8, 9]"
    assert found.batch == 6


class AtMostEightChannels(nn.BatchNorm2d):
    """A fused kernel that tiles at most 8 channels: C = 11 fails, the probe's own C runs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > 8:
            raise RuntimeError(f"kernel supports at most 8 channels, got {x.shape[1]}")
        return super().forward(x)


def test_the_channel_count_is_varied_unless_the_user_pinned_it() -> None:
    found = context(AtMostEightChannels).domain
    assert list(found.channel_errors) == [domain_probe.WIDE_CHANNELS]
    assert "at most 8 channels, got 11" in found.channel_errors[domain_probe.WIDE_CHANNELS]


@pytest.mark.parametrize(("seed", "channels"), list(itertools.product(range(len(LAYOUTS)), (4, 6, 8))))
def test_three_distinct_batch_sizes_are_tried_per_rank_whatever_c_the_user_pinned(seed: int, channels: int) -> None:
    settings = RunSettings(seed=seed, num_features=channels)
    ctx = RunContext(load_spec("pytorch"), Builder(load_target("torch.nn:BatchNorm2d")), settings)
    tried = batches_to_try(ctx)
    assert len(set(tried)) == 3 and channels not in tried[1:]


class AtLeastTwoChannels(nn.BatchNorm2d):
    """A grouped kernel that needs two channels or more: C = 1 fails, the probe's own C runs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] < 2:
            raise RuntimeError(f"grouped kernel needs at least 2 channels, got {x.shape[1]}")
        return super().forward(x)


def test_a_single_channel_is_among_the_channel_counts_tried() -> None:
    found = context(AtLeastTwoChannels).domain
    assert list(found.channel_errors) == [domain_probe.NARROW_CHANNELS] == [1]
