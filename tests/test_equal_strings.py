"""Strings that arrive from outside are equal to bnconform's literals, not the same object: a
device or profile from the command line or a config file, an error kind sent back from the
supervised worker as JSON. Every comparison with them must be by value (issue 13: `==` turned
into `is` survives every test that only ever passes the interned literal)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bnconform import runner
from bnconform.checks import dtypes as dtype_checks
from bnconform.checks import output
from bnconform.errors import UserCodeError
from bnconform.findings import Severity
from bnconform.probes import gradcheck as gradcheck_probes
from bnconform.registry import CheckSpec, passed
from tests._contexts import context, measured
from tests._strings import fresh


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA every requested device is covered anyway")
def test_a_cpu_device_from_the_command_line_is_covered_by_the_dtype_checks() -> None:
    ctx = context(nn.BatchNorm2d, devices=(fresh("cpu"),))
    assert dtype_checks.dtype_devices(ctx) == ["cpu"]


def test_the_thorough_profile_from_the_command_line_runs_the_full_gradcheck() -> None:
    ctx = context(nn.BatchNorm2d, profile=fresh("thorough"))
    for train in (True, False):
        measured(ctx, gradcheck_probes.directional, train, value=gradcheck_probes.GradCheck(
            "train" if train else "eval", {}))
    measured(ctx, gradcheck_probes.full_gradcheck, value=gradcheck_probes.FullGradCheck(
        {"train": "Jacobian mismatch for output 0", "eval": ""}, {}))
    verdict = dtype_checks.gradcheck(ctx)
    assert verdict.status == "failed"
    assert "train (torch.autograd.gradcheck): Jacobian mismatch for output 0" in verdict.message


def test_a_thorough_check_runs_under_the_thorough_profile_from_the_command_line() -> None:
    ctx = context(nn.BatchNorm2d, profile=fresh("thorough"))
    spec = CheckSpec("deep-check", "area", "title", Severity.WARNING, "why", "hint", (), "thorough",
                     lambda ctx: passed(ran=True))
    result = runner.run_one(ctx, spec, {}, set())
    assert (result.status.value, result.measurements) == ("passed", {"ran": True})


@pytest.mark.parametrize("kind", ["nan", fresh("nan")])
def test_a_nan_from_the_worker_is_reported_as_non_finite_values(kind: str) -> None:
    ctx = context(nn.BatchNorm2d)
    spec = CheckSpec("output-mismatch", "area", "title", Severity.ERROR, "why", "hint", (), "default",
                     lambda ctx: passed())
    result = runner.crashed(ctx, spec, UserCodeError("train-mode forward", "NaN in the output", kind), set())
    (finding,) = result.findings
    assert (finding.expected, finding.observed) == ("finite values", "NaN/inf")
    assert "print('finite:', torch.isfinite(y).all())" in finding.repro


def test_a_hang_replayed_from_the_worker_ends_the_output_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """A call that hung in an earlier worker fails fast in the next with the kind read back as JSON."""
    ctx = context(nn.BatchNorm2d)
    calls = []

    def hangs(*args: object, **kwargs: object) -> None:
        calls.append(1)
        raise UserCodeError("train-mode forward", "no result within 1 s", fresh("timeout"))

    monkeypatch.setattr(output, "compare", hangs)
    with pytest.raises(UserCodeError, match="hung"):
        output.search(ctx, ctx.behaviour())
    assert len(calls) == 1  # one hang is enough: the search does not wait again


def test_an_unbiased_estimator_named_in_a_spec_file_is_applied() -> None:
    from bnconform.probes.statistics import variance_used

    biased = torch.tensor([1.0, 2.0])
    assert torch.equal(variance_used(biased, fresh("unbiased"), 5), biased * 5 / 4)


def test_a_frozen_behaviour_read_from_a_spec_file_is_replayed_with_its_running_statistics() -> None:
    from bnconform.probes.impact import Deviation, replay

    ctx = context(nn.BatchNorm2d)
    literal = replay(ctx, Deviation(ctx.behaviour().but(train_uses="running"), "train"))
    read = replay(ctx, Deviation(ctx.behaviour().but(train_uses=fresh("running")), "train"))
    assert read == pytest.approx(literal) and literal > 0.1


def test_the_output_repro_normalizes_with_the_unbiased_variance_a_spec_file_names() -> None:
    import dataclasses

    from bnconform.spec import load_spec

    spec = dataclasses.replace(load_spec("pytorch"), norm_variance=fresh("unbiased"))
    ctx = context(nn.BatchNorm2d, spec)
    case = output.Case((2, 5, 3, 4), [0.0] * 5, [1.0] * 5, [1.0] * 5, [0.0] * 5, salt=1)
    assert "var = x.var(dim=(0, 2, 3), unbiased=True, keepdim=True)" in output.repro(ctx, case)


def test_an_eval_output_under_a_spec_file_that_evaluates_with_batch_statistics_is_a_training_output() -> None:
    from types import SimpleNamespace

    from bnconform.checks.sequences import TRAIN_OUTPUT, possible_causes
    from bnconform.sequences import EVAL_FORWARD, TO_EVAL, Divergence

    ctx = SimpleNamespace(spec=SimpleNamespace(eval_uses=fresh("batch")))
    found = possible_causes(ctx, Divergence(what="output", during=EVAL_FORWARD, calls=[TO_EVAL, EVAL_FORWARD]))
    assert found is not None and found[:len(TRAIN_OUTPUT)] == list(TRAIN_OUTPUT)


def test_the_output_repro_adds_eps_outside_the_square_root_where_a_spec_file_says_so() -> None:
    import dataclasses

    from bnconform.spec import load_spec

    spec = dataclasses.replace(load_spec("pytorch"), eps_placement=fresh("outside-sqrt"))
    ctx = context(nn.BatchNorm2d, spec)
    case = output.Case((2, 5, 3, 4), [0.0] * 5, [1.0] * 5, [1.0] * 5, [0.0] * 5, salt=1)
    assert "expected = gamma * (x - mean) / (var.sqrt() + eps) + beta" in output.repro(ctx, case)


def test_a_cuda_device_from_the_command_line_is_also_tried_with_dot_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    from bnconform.probes import devices

    on_cpu = devices.sample  # the input stays on the CPU: the moves tried are the point, not their outcome
    monkeypatch.setattr(devices, "sample", lambda ctx, device, dtype, **kw: on_cpu(ctx, "cpu", dtype, **kw))
    transfer = devices.cuda_transfer(context(nn.BatchNorm2d), fresh("cuda"))
    assert transfer.tried == [".to('cuda')", ".cuda()", "constructed with device='cuda'"]
