"""Correct BatchNorms are clean: no error or warning finding, exit code 0.

torch.nn's own BatchNorm1d/2d/3d and the corpus reference under the "pytorch" spec, and the
Keras-convention reference under the "keras" spec, for seeds 0..N-1 (N = $BNCONFORM_SEEDS,
default 5). The reference itself is first checked against torch directly, so a finding on
it can only be the tool's fault.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from typing import Any

import pytest
import torch

from tests.corpus.reference import BatchNorm as Reference

SEEDS = range(int(os.environ.get("BNCONFORM_SEEDS", "5")))
CLEAN = [
    ("torch.nn:BatchNorm1d", "pytorch"),
    ("torch.nn:BatchNorm2d", "pytorch"),
    ("torch.nn:BatchNorm3d", "pytorch"),
    ("tests.corpus.reference:BatchNorm", "pytorch"),
    ("tests.corpus.keras_reference:BatchNorm", "keras"),
]
TORCH_BN = {
    2: torch.nn.BatchNorm1d,
    3: torch.nn.BatchNorm1d,
    4: torch.nn.BatchNorm2d,
    5: torch.nn.BatchNorm3d,
}


@pytest.fixture(scope="module")
def run_check():
    from bnconform.api import run_check

    return run_check


def _noisy(result: Mapping[str, Any]) -> list[str]:
    return [
        f"{f['severity']} {f['code']}: {f['message']}"
        for f in result["findings"]
        if f["severity"] in ("error", "warning")
    ]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("target", "spec"), CLEAN, ids=[t for t, _ in CLEAN])
def test_correct_batchnorm_is_clean(target: str, spec: str, seed: int, run_check) -> None:
    result = run_check(target, spec=spec, init=None, seed=seed)
    assert not _noisy(result)
    assert result["summary"]["verdict"] == "pass"
    assert result["summary"]["exit_code"] == 0


def test_an_error_finding_sets_exit_code_1(run_check) -> None:
    result = run_check(
        "tests.corpus.momentum_inverted_formula:BatchNorm", spec="pytorch", init=None, seed=0
    )
    assert any(f["severity"] == "error" for f in result["findings"])
    assert result["summary"]["verdict"] == "fail"
    assert result["summary"]["exit_code"] == 1


# -- the reference against torch itself (no bnconform involved) -----------------------------


def _pair(rank: int, momentum: float | None, affine: bool, track: bool, seed: int):
    g = torch.Generator().manual_seed(seed)
    c = int(torch.randint(1, 5, (1,), generator=g))
    kw = dict(
        eps=0.05 * float(torch.rand(1, generator=g)) + 1e-5,
        momentum=momentum,
        affine=affine,
        track_running_stats=track,
    )
    ours, theirs = Reference(c, **kw).double(), TORCH_BN[rank](c, **kw).double()
    if affine:
        with torch.no_grad():
            for name in ("weight", "bias"):
                value = torch.randn(c, generator=g, dtype=torch.float64)
                getattr(ours, name).copy_(value)
                getattr(theirs, name).copy_(value)
    return ours, theirs, g


def _input(rank: int, c: int, g: torch.Generator) -> torch.Tensor:
    size = [int(torch.randint(2, 6, (1,), generator=g)), c]
    size += [int(torch.randint(1, 4, (1,), generator=g)) for _ in range(rank - 2)]
    return torch.randn(size, generator=g, dtype=torch.float64) * 3 + 2


@pytest.mark.parametrize(
    ("rank", "momentum", "affine", "track"),
    list(itertools.product((2, 3, 4, 5), (0.1, 0.7, None), (True, False), (True, False))),
)
def test_reference_matches_torch(
    rank: int, momentum: float | None, affine: bool, track: bool
) -> None:
    for seed in range(3):
        ours, theirs, g = _pair(rank, momentum, affine, track, seed)
        for train in (True, True, True, False, True):
            ours.train(train)
            theirs.train(train)
            x = _input(rank, ours.num_features, g)
            xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
            ya, yb = ours(xa), theirs(xb)
            torch.testing.assert_close(ya, yb, rtol=1e-10, atol=1e-10)
            grad_out = torch.randn(ya.shape, generator=g, dtype=torch.float64)
            ya.backward(grad_out)
            yb.backward(grad_out)
            torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-10, atol=1e-10)
            sa, sb = ours.state_dict(), theirs.state_dict()
            assert list(sa) == list(sb)
            for key in sa:
                torch.testing.assert_close(sa[key], sb[key], rtol=1e-10, atol=1e-10)
        if affine:
            torch.testing.assert_close(ours.weight.grad, theirs.weight.grad)
            torch.testing.assert_close(ours.bias.grad, theirs.bias.grad)
        theirs.load_state_dict(ours.state_dict())
        ours.load_state_dict(theirs.state_dict())


@pytest.mark.parametrize("rank", (2, 3, 4, 5))
def test_reference_batch_of_one_and_no_grad_match_torch(rank: int) -> None:
    ours, theirs = Reference(3), TORCH_BN[rank](3)
    single = torch.randn([1, 3] + [1] * (rank - 2))
    for module in (ours, theirs):
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            module(single)
    with torch.no_grad():  # train mode under no_grad still updates the running statistics
        x = torch.randn([4, 3] + [2] * (rank - 2))
        torch.testing.assert_close(ours(x), theirs(x))
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value)
