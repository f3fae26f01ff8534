"""Mutants of checks/ that outlived the corpus, the wild corpus and the golden reports (issue 13),
each killed here by a small class that reaches the branch no corpus class reaches.

Each test drives one check on a RunContext, as a run does after discovery, and asserts what the
user reads (status, reason, message), so a mutant that swaps a branch or a digit fails it."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bnconform.checks import running as running_checks
from bnconform.construct import Builder
from bnconform.context import RunContext, RunSettings
from bnconform.spec import load_spec
from bnconform.target import Target


def context(cls: type, spec: str = "pytorch", **settings: Any) -> RunContext:
    from bnconform.api import target_from_object

    target: Target = target_from_object(cls)
    ctx = RunContext(load_spec(spec), Builder(target), RunSettings(**settings))
    assert ctx.domain.probe_rank >= 2
    return ctx


class OddInitialMean(nn.BatchNorm1d):
    """running_mean starts at 1/3 in every channel (a checkpoint's value, say)."""

    def __init__(self, num_features: int, **kwargs: Any) -> None:
        super().__init__(num_features, **kwargs)
        self.running_mean.fill_(1 / 3)


def test_initial_statistics_are_shown_to_four_decimals() -> None:
    verdict = running_checks.running_stats_init(context(OddInitialMean))
    assert verdict.status == "failed"
    assert verdict.observed.startswith("running_mean = [0.3333, 0.3333, 0.3333, 0.3333]"), verdict.observed


class NanMeanFrozenVar(nn.BatchNorm1d):
    """A training step writes NaN into running_mean and leaves running_var as it was."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self.running_mean.fill_(float("nan"))
        return nn.functional.batch_norm(x, self.running_mean.clone(), self.running_var.clone(), self.weight,
                                        self.bias, self.training, 0.0, self.eps)


def test_a_running_mean_that_turns_nan_is_not_called_unmoved() -> None:
    verdict = running_checks.running_stats_not_updated(context(NanMeanFrozenVar))
    assert verdict.status == "skipped", verdict
    assert verdict.reason == "cannot be measured: the running statistics could not be read after a step"
