"""The deep checks themselves: device resolution, skips without CUDA, the device probes
exercised on the CPU ('meta' and 'cpu' stand in for 'cuda'), dtype tolerances, gradcheck
in the thorough profile, and clean runs of torch.nn.BatchNorm under several seeds."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from bnconform.construct import Builder
from bnconform.context import RunContext, RunSettings
from bnconform.errors import UsageError
from bnconform.spec import load_spec
from bnconform.target import load_target

DEEP_CODES = ("device-transfer", "device-parity", "dtype-support", "gradcheck", "non-contiguous",
              "memory-format", "sequence-mismatch")
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")


def context(target: str, **settings: Any) -> RunContext:
    return RunContext(load_spec("pytorch"), Builder(load_target(target)), RunSettings(**settings))


def checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in result["checks"]}


@pytest.fixture(scope="module")
def run_check():
    from bnconform.api import run_check

    return run_check


# -- devices --------------------------------------------------------------------------------


@NO_CUDA
def test_without_cuda_device_parity_is_skipped_never_passed(run_check) -> None:
    result = run_check("torch.nn:BatchNorm2d", device="auto")
    by_id = checks(result)
    assert by_id["device-parity"]["status"] == "skipped"
    assert by_id["device-parity"]["reason"] == "no CUDA device"
    assert "no CUDA device" in by_id["device-transfer"]["reason"]  # its CPU part ran and passed
    assert result["settings"]["devices"] == ["cpu"]


@NO_CUDA
def test_device_cuda_without_cuda_is_a_usage_error(run_check) -> None:
    with pytest.raises(UsageError, match=r"no CUDA device available \(torch.cuda.is_available\(\) is False\)"):
        run_check("torch.nn:BatchNorm2d", device="cuda")


def test_resolve_device() -> None:
    from bnconform.api import resolve_device

    cuda = ["cuda"] if torch.cuda.is_available() else []
    assert resolve_device("cpu") == ("cpu", ["cpu"])
    assert resolve_device("auto") == ("cpu", ["cpu", *cuda])
    with pytest.raises(UsageError, match="'tpu' is not one of cpu, cuda, auto"):
        resolve_device("tpu")


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("torch.nn:BatchNorm2d", None),
        ("tests.corpus.reference:BatchNorm", None),
        ("tests.corpus.deep.device_transfer_plain_attribute:BatchNorm", "eps_t (plain attribute) stays on cpu"),
        ("tests.corpus.deep.device_forward_cpu_tensor:BatchNorm", "is not on the expected device meta"),
    ],
)
def test_device_transfer_probe_on_the_meta_device(target: str, problem: str | None) -> None:
    # 'meta' behaves like a second device on a CPU-only machine: the CUDA path, without a GPU.
    from bnconform.probes.devices import cuda_transfer

    found = cuda_transfer(context(target), "meta")
    if problem is None:
        assert found.problems == []
    else:
        assert any(problem in p for p in found.problems), found.problems


@pytest.mark.parametrize(("target", "wrong"), [("torch.nn:BatchNorm2d", set()),
                                               ("tests.corpus.grad_mismatch:BatchNorm", {"input gradient"})])
def test_parity_probe_against_the_reference_on_cpu(target: str, wrong: set[str]) -> None:
    from bnconform.probes.devices import cuda_parity

    parity = cuda_parity(context(target), torch.float32, "cpu")
    assert {"train output", "input gradient", "weight gradient", "running_var", "eval output"} <= set(parity.ratios)
    assert {name for name, ratio in parity.ratios.items() if not ratio <= 1} == wrong


@pytest.mark.cuda
@CUDA
def test_torch_batchnorm2d_is_clean_on_cuda(run_check) -> None:
    result = run_check("torch.nn:BatchNorm2d", device="cuda")
    by_id = checks(result)
    assert by_id["device-parity"]["status"] == "passed", by_id["device-parity"]
    assert by_id["device-transfer"]["status"] == "passed", by_id["device-transfer"]
    assert "float32 train output" in by_id["device-parity"]["measurements"]
    assert not [f for f in result["findings"] if f["severity"] in ("error", "warning")]
    assert result["settings"]["devices"] == ["cuda"]


@pytest.mark.cuda
@CUDA
def test_auto_runs_cpu_and_cuda(run_check) -> None:
    result = run_check("torch.nn:BatchNorm2d", device="auto")
    assert result["settings"]["devices"] == ["cpu", "cuda"]
    assert checks(result)["device-parity"]["status"] == "passed"
    assert "cuda float16 module" in checks(result)["dtype-support"]["measurements"]


# -- dtypes ----------------------------------------------------------------------------------


def test_dtype_support_reports_measured_next_to_allowed(run_check) -> None:
    measured = checks(run_check("torch.nn:BatchNorm2d"))["dtype-support"]["measurements"]
    half = measured["cpu float16 module (input std 300)"]["train output"]
    assert 0 <= half["error"] <= half["allowed"] < 0.1
    assert set(measured) >= {"cpu float64 module", "cpu bfloat16 module", "cpu float32 module, float16 input",
                             "cpu float16 module (input std 1000)", "cpu float16 module (input mean 1000)"}
    # torch.nn.BatchNorm gets exactly as far as torch's own functional batch_norm.
    for pair in measured["scales"].values():
        assert pair["handles"] == pair["torch_handles"] and pair["breaks_at"] is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_half_variance_is_a_warning_that_names_the_breaking_scale(run_check, seed: int) -> None:
    # Correct, but statistics in float16: the variance overflows from std ~256, not before.
    result = run_check("tests.fixtures.precision_bn:HalfVariance", seed=seed)
    (found,) = [f for f in result["findings"] if f["code"] == "dtype-support"]
    assert found["severity"] == "warning", found["message"]
    assert "breaks at input std 300" in found["message"]
    assert "; it handles std 10, std 100; torch.nn.BatchNorm handles std 10, std 100, std 300" in found["message"]
    assert found["details"]["scales"]["cpu float16"]["breaks_at"] == "std 300"
    assert not [f for f in result["findings"] if f["severity"] == "error"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_squares_in_half_precision_are_an_error_at_ordinary_scale(run_check, seed: int) -> None:
    # (x - mean)**2 written out in float16 overflows on ordinary 2.5-sigma values at std 100.
    result = run_check("tests.corpus.deep.dtype_support_half_overflow:BatchNorm", seed=seed)
    (found,) = [f for f in result["findings"] if f["code"] == "dtype-support"]
    assert found["severity"] == "error" and "ordinary activation scales" in found["message"]
    assert found["details"]["scales"]["cpu float16"]["breaks_at"] in ("std 10", "std 100")


def test_allowed_error_grows_with_dtype_and_reduction_length() -> None:
    from bnconform.probes.devices import allowed_error

    ctx = context("torch.nn:BatchNorm2d")
    one = torch.ones(1, dtype=torch.float64)
    dtypes = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
    widths = [float(allowed_error(ctx, d, one, 16)) for d in dtypes]
    assert widths == sorted(widths)
    assert float(allowed_error(ctx, torch.float16, one, 1024)) > float(allowed_error(ctx, torch.float16, one, 16))


def test_torch_keeps_float32_stats_for_half_input() -> None:
    # The definition dtype-support checks against, measured on torch itself.
    bn = torch.nn.BatchNorm2d(3)
    y = bn((torch.randn(4, 3, 2, 2) * 300).half())
    assert y.dtype == torch.float16 and bn.running_var.dtype == torch.float32 and torch.isfinite(y).all()


# -- sequences ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["RejectsNoneMomentum", "NoneMomentumFailsInForward"])
def test_sequences_use_momentum_none_only_where_the_class_accepts_it(run_check, name: str) -> None:
    from bnconform.sequences import momenta

    target = f"tests.fixtures.precision_bn:{name}"
    assert None not in momenta(context(target))
    result = run_check(target)
    assert checks(result)["sequence-mismatch"]["status"] == "passed", checks(result)["sequence-mismatch"]
    assert "sequence-mismatch" not in {f["code"] for f in result["findings"]}


def test_sequences_try_momentum_none_on_a_class_that_supports_it() -> None:
    from bnconform.sequences import momenta

    assert momenta(context("tests.corpus.reference:BatchNorm")) == ["default", 0.3, None]


def test_sequences_start_from_the_implementations_own_statistics(run_check) -> None:
    # Initial running_var 0 is running-stats-init's finding; the dynamics after it are right.
    result = run_check("tests.corpus.running_stats_init:BatchNorm")
    assert checks(result)["sequence-mismatch"]["status"] == "passed", checks(result)["sequence-mismatch"]
    assert {f["code"] for f in result["findings"]} == {"running-stats-init"}


# -- layouts ---------------------------------------------------------------------------------


def test_torch_channels_last_output_layout() -> None:
    # What memory-format requires of the output layout, measured on torch itself.
    x = torch.randn(4, 3, 2, 2).contiguous(memory_format=torch.channels_last)
    assert torch.nn.BatchNorm2d(3)(x).is_contiguous(memory_format=torch.channels_last)


def test_memory_format_skipped_for_channels_last_specs(run_check) -> None:
    result = run_check("tests.corpus.keras_reference:BatchNorm", spec="keras")
    assert checks(result)["memory-format"]["status"] == "skipped"
    assert checks(result)["non-contiguous"]["status"] == "passed"


# -- gradcheck -------------------------------------------------------------------------------


def test_thorough_gradcheck_uses_torch_gradcheck() -> None:
    from bnconform.probes import gradcheck

    ctx = context("tests.corpus.deep.gradcheck_eval_backward:BatchNorm", profile="thorough")
    assert ctx.domain.ranks  # discovered first, as the runner does
    full = gradcheck.full_gradcheck(ctx)
    assert full.gradcheck["train"] == ""
    assert "GradcheckError" in full.gradcheck["eval"]


def test_thorough_gradcheck_passes_on_torch() -> None:
    from bnconform.probes import gradcheck

    ctx = context("torch.nn:BatchNorm2d", profile="thorough")
    assert ctx.domain.ranks  # discovered first, as the runner does
    full = gradcheck.full_gradcheck(ctx)
    assert full.gradcheck == {"train": "", "eval": ""} and full.gradgradcheck == {"train": "", "eval": ""}


# -- clean runs -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("target", ["torch.nn:BatchNorm1d", "torch.nn:BatchNorm2d", "torch.nn:BatchNorm3d",
                                    "tests.corpus.reference:BatchNorm"])
def test_deep_checks_pass_on_correct_batchnorms(run_check, target: str, seed: int) -> None:
    by_id = checks(run_check(target, seed=seed))
    expected = {code: "passed" for code in DEEP_CODES}
    if not torch.cuda.is_available():
        expected["device-parity"] = "skipped"
    if target.endswith("BatchNorm1d"):
        expected["memory-format"] = "skipped"  # no 4-D or 5-D input
    assert {code: by_id[code]["status"] for code in DEEP_CODES} == expected, {c: by_id[c] for c in DEEP_CODES}


class _FrozenNorm(torch.autograd.Function):
    """Right first derivative, no second one (@once_differentiable): gradgradcheck fails."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        axes = [0, *range(2, x.dim())]
        mean, var = x.mean(dim=axes, keepdim=True), x.var(dim=axes, correction=0, keepdim=True)
        inv = torch.rsqrt(var + 1e-5)
        x_hat = (x - mean) * inv
        ctx.save_for_backward(x_hat, inv, weight)
        return x_hat * weight + bias

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x_hat, inv, weight = ctx.saved_tensors
        axes = [0, *range(2, grad.dim())]
        g = grad * weight
        dx = inv * (g - g.mean(dim=axes, keepdim=True) - x_hat * (g * x_hat).mean(dim=axes, keepdim=True))
        return dx, (grad * x_hat).sum(dim=axes, keepdim=True), grad.sum(dim=axes, keepdim=True)


class OnceDifferentiable(torch.nn.BatchNorm2d):
    """torch.nn.BatchNorm2d whose training forward is a once-differentiable Function."""

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        super().forward(x)  # running statistics as torch updates them
        shape = (1, -1, 1, 1)
        return _FrozenNorm.apply(x, self.weight.view(shape), self.bias.view(shape))


def test_gradgradcheck_failure_is_info_in_thorough_only() -> None:
    from bnconform.findings import Severity
    from bnconform.registry import get_check

    for profile, expected in (("default", "passed"), ("thorough", "failed")):
        ctx = context("tests.test_deep_checks:OnceDifferentiable", profile=profile)
        assert ctx.domain.ranks  # discovered first, as the runner does
        verdict = get_check("gradcheck").fn(ctx)
        assert verdict.status == expected, verdict
    assert verdict.severity == Severity.INFO and "gradgradcheck" in verdict.message
