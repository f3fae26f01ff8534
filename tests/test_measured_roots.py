"""Roots measured, not guessed from the table (audit of state-dict and sequence-mismatch roots).

A state_dict that torch cannot load says which keys differ, and the keys decide its cause: other
names are the finding itself, a missing counter is the counter's finding. A sequence divergence
says what differed and after which kinds of calls, and only causes that can produce that are
candidates: a default momentum never changes a training output, a state_dict defect matters only
to a sequence that reloads.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from bnconform.api import run_check
from bnconform.checks.sequences import possible_causes
from bnconform.checks.state import interop_attribution
from bnconform.diagnosis import diagnose
from bnconform.findings import Finding, Severity
from bnconform.probes.model import KeyDifference, StateDictObservation, key_difference
from bnconform.sequences import (
    EVAL_FORWARD,
    EVAL_FORWARD_NO_GRAD,
    RAISED,
    RELOAD,
    RESET,
    TO_EVAL,
    TO_TRAIN,
    TRAIN_FORWARD,
    TRAIN_FORWARD_NO_GRAD,
    Divergence,
)


def finding(code: str, severity: str = "error", **details: Any) -> Finding:
    return Finding(code, Severity(severity), f"{code} message", "exp", "obs", "why", "fix", details=details)


def causes(found: list[Finding]) -> dict[str, str | None]:
    return {f["code"]: f["caused_by"] for f in diagnose(found)}


# -- diagnosis: possible_causes ------------------------------------------------------------------

def test_possible_causes_restrict_the_table_and_none_present_makes_a_root() -> None:
    # By the table momentum-default explains sequence-mismatch; it cannot change a training output.
    possible = ["reduction-axes", "output-mismatch"]
    found = [finding("momentum-default", "warning"), finding("sequence-mismatch", possible_causes=possible)]
    assert causes(found)["sequence-mismatch"] is None
    found.append(finding("output-mismatch"))
    assert causes(found)["sequence-mismatch"] == "output-mismatch"


def test_among_possible_causes_the_tables_precedence_decides() -> None:
    # running-var-estimator's row comes before running-stats-not-buffers' (and mode-follows-grad's
    # before both, but it is not possible here).
    possible = ["running-stats-not-buffers", "running-var-estimator"]
    found = [finding("mode-follows-grad"), finding("running-stats-not-buffers"), finding("running-var-estimator"),
             finding("sequence-mismatch", possible_causes=possible)]
    assert causes(found)["sequence-mismatch"] == "running-var-estimator"


def test_a_possible_cause_is_followed_to_its_own_root() -> None:
    found = [finding("reduction-axes"), finding("running-stats-shape"),
             finding("state-dict", possible_causes=["running-stats-shape"])]
    assert causes(found)["state-dict"] == "reduction-axes"


def test_explained_by_outside_the_possible_causes_is_ignored() -> None:
    found = [finding("affine-params"), finding("num-batches-tracked", "info"),
             finding("state-dict", "warning", explained_by=["affine-params", "num-batches-tracked"],
                     possible_causes=["num-batches-tracked"])]
    assert causes(found)["state-dict"] == "num-batches-tracked"


def test_explained_by_with_none_present_within_possible_causes_is_a_root() -> None:
    found = [finding("affine-params"),
             finding("state-dict", "warning", explained_by=["num-batches-tracked"],
                     possible_causes=["num-batches-tracked"])]
    assert causes(found)["state-dict"] is None


# -- state-dict: which keys differ, and what that attributes ---------------------------------------

def attribution(loader: str, missing: tuple[str, ...] = (), unexpected: tuple[str, ...] = (),
                mis_shaped: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()) -> dict[str, Any]:
    keys = KeyDifference(missing, unexpected, mis_shaped)
    return interop_attribution(StateDictObservation("", "message", loader, keys))


def test_keys_under_other_names_are_the_finding_itself() -> None:
    renamed = attribution("torch", ("weight", "bias", "running_mean", "running_var"),
                          ("gamma", "beta", "moving_mean", "moving_var"))
    assert renamed["accounted_for"] is True and "explained_by" not in renamed
    nested = attribution("torch", ("weight",), ("bn.weight", "bn.num_batches_tracked"))
    assert nested["accounted_for"] is True
    # Loading torch's into the class: the class's other names are what it misses.
    assert attribution("yours", ("moving_mean",), ("running_mean",))["accounted_for"] is True


def test_only_the_counter_is_the_counters_finding_in_either_direction() -> None:
    for loader, keys in (("yours", {"unexpected": ("num_batches_tracked",)}),
                         ("torch", {"missing": ("num_batches_tracked",)}),
                         ("torch", {"mis_shaped": (("num_batches_tracked", (2,), ()),)})):
        found = attribution(loader, **keys)
        assert found["explained_by"] == ["num-batches-tracked"] == found["possible_causes"], keys


def test_statistics_parameters_and_shapes_point_at_their_defects() -> None:
    assert attribution("torch", ("running_mean", "running_var"))["explained_by"] == [
        "running-stats-not-buffers", "running-stats-missing"]
    assert attribution("torch", ("weight", "bias"))["explained_by"] == ["affine-params"]
    assert attribution("torch", mis_shaped=(("running_var", (1, 5, 1, 1), (5,)),))["explained_by"] == [
        "running-stats-shape"]
    # A mis-shaped weight: no finding says so; the state-dict finding is its own root.
    assert attribution("torch", mis_shaped=(("weight", (5, 1, 1), (5,)),))["accounted_for"] is True
    assert interop_attribution(StateDictObservation("", "values differ")) == {}  # nothing measured


def test_key_difference_uses_torchs_own_rules() -> None:
    class Renamed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("moving_mean", torch.zeros(5))
            self.register_buffer("running_var", torch.ones(1, 5, 1, 1))

    keys = key_difference(lambda: torch.nn.BatchNorm2d(5), Renamed().state_dict())
    # torch fills in the counter an old-format state_dict lacks: not a difference.
    assert keys.missing == ("weight", "bias", "running_mean")
    assert keys.unexpected == ("moving_mean",)
    assert keys.mis_shaped == (("running_var", (1, 5, 1, 1), (5,)),)
    assert keys.describe("yours", "BatchNorm2d") == (
        "missing weight, bias, running_mean; unexpected moving_mean;"
        " running_var has shape (1, 5, 1, 1) in yours, (5,) in BatchNorm2d")
    assert not key_difference(lambda: torch.nn.BatchNorm2d(5), torch.nn.BatchNorm2d(5).state_dict())


# -- sequence-mismatch: what the divergence allows --------------------------------------------------

CTX = SimpleNamespace(spec=SimpleNamespace(eval_uses="running"))


def possible(what: str, during: str, calls: list[str], momentum: object = "default",
             size_differs: bool = False) -> list[str] | None:
    roles = {} if momentum == "default" else {"momentum": momentum}
    return possible_causes(CTX, Divergence(what=what, during=during, calls=calls, roles=roles,  # type: ignore[arg-type]
                                           size_differs=size_differs))


def test_a_first_training_output_is_about_how_the_output_is_computed() -> None:
    found = possible("output", TRAIN_FORWARD, [TO_TRAIN, TRAIN_FORWARD])
    assert found is not None and "output-mismatch" in found and "train-uses-running-stats" in found
    for absent in ("momentum-default", "momentum-inverted", "running-var-estimator", "state-dict",
                   "mode-follows-grad", "eval-updates-running-stats", "eval-uses-batch-stats"):
        assert absent not in found, absent
    assert "mode-follows-grad" in possible("output", TRAIN_FORWARD_NO_GRAD, [TRAIN_FORWARD_NO_GRAD])


def test_running_statistics_after_training_are_about_the_update() -> None:
    found = possible("running_var", TRAIN_FORWARD, [TRAIN_FORWARD])
    assert found is not None
    assert {"momentum-default", "momentum-inverted", "running-var-estimator", "running-stats-not-updated"} <= set(found)
    for absent in ("mode-follows-grad", "state-dict", "momentum-ignored", "running-stats-shape", "output-mismatch"):
        assert absent not in found, absent
    mean = possible("running_mean", TRAIN_FORWARD, [TRAIN_FORWARD], momentum=0.3)
    assert mean is not None and "momentum-ignored" in mean and "momentum-default" not in mean
    assert "running-var-estimator" not in mean
    cumulative = possible("running_mean", TRAIN_FORWARD, [TRAIN_FORWARD], momentum=None)
    assert cumulative is not None and "num-batches-tracked" in cumulative
    assert "running-stats-shape" in (possible("running_mean", TRAIN_FORWARD, [TRAIN_FORWARD], size_differs=True)
                                     or [])


def test_the_calls_in_the_sequence_admit_their_causes() -> None:
    found = possible("running_mean", EVAL_FORWARD, [TO_EVAL, EVAL_FORWARD, RESET, RELOAD])
    assert found is not None
    assert {"eval-updates-running-stats", "mode-follows-grad", "running-stats-init", "state-dict",
            "affine-params"} <= set(found)
    no_grad_eval = possible("running_mean", EVAL_FORWARD_NO_GRAD, [TO_EVAL, EVAL_FORWARD_NO_GRAD])
    assert no_grad_eval is not None and "mode-follows-grad" not in no_grad_eval
    assert "eval-updates-running-stats" in no_grad_eval
    counter = possible("num_batches_tracked", TRAIN_FORWARD, [TRAIN_FORWARD])
    assert counter == ["num-batches-tracked"]
    assert "state-dict" in (possible(RAISED, RELOAD, [TRAIN_FORWARD, RELOAD]) or [])
    assert possible(RAISED, TRAIN_FORWARD, [TRAIN_FORWARD]) is None  # too many ways to raise: the table


# -- the audited cases, end to end --------------------------------------------------------------------

AUDITED = [
    # (target, the state-dict finding's cause, the sequence-mismatch finding's cause)
    ("bnconform.examples.tutorial:BatchNorm", None, "momentum-inverted"),
    ("tests.wild.batch:GhostBatchNorm", None, "output-mismatch"),
    ("tests.wild.batch:GhostBatchNorm3", None, None),  # a no_grad training output no present finding can produce
    ("tests.wild.fused:BNReLU", None, "output-mismatch"),
    ("tests.wild.layouts:D2lBatchNorm", None, "running-var-estimator"),
    ("tests.wild.library:FrozenBatchNorm2d", "num-batches-tracked", "train-uses-running-stats"),
]


@pytest.mark.parametrize(("target", "state_dict_cause", "sequence_cause"), AUDITED, ids=[a[0] for a in AUDITED])
def test_the_audited_cases_are_filed_under_their_measured_cause(target: str, state_dict_cause: str | None,
                                                                sequence_cause: str | None) -> None:
    torch.manual_seed(0)
    result = run_check(target, seed=0)
    by_code = {f["code"]: f for f in result["findings"]}
    assert by_code["state-dict"]["caused_by"] == state_dict_cause, by_code["state-dict"]["message"]
    assert by_code["sequence-mismatch"]["caused_by"] == sequence_cause, by_code["sequence-mismatch"]["details"]



def test_a_mis_shaped_weight_keeps_the_finding_its_own_root_even_next_to_a_known_cause() -> None:
    found = attribution("torch", ("num_batches_tracked",), mis_shaped=(("weight", (5, 1, 1), (5,)),))
    assert found["accounted_for"] is True and "explained_by" not in found
