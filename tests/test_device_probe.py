"""The device and conversion probes (bnconform.probes.devices) on the CPU: what stays behind a
conversion, how an observation is compared with its allowed error, and the reference parity a
CUDA run is judged by, driven here with device="cpu" (issue 13)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bnconform.probes import devices, precision
from tests._contexts import context, measured


class PlainStatistics(nn.BatchNorm2d):
    """Running statistics re-bound as plain attributes: .half() and .to() leave them behind."""

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        mean, var = self.running_mean, self.running_var
        del self.running_mean, self.running_var
        self.running_mean, self.running_var = mean, var


def test_stragglers_are_floating_tensors_that_kept_their_dtype() -> None:
    module = PlainStatistics(3).half()
    assert devices.stragglers(module, dtype=torch.float16) == [
        "running_mean (plain attribute) stays torch.float32", "running_var (plain attribute) stays torch.float32"]
    assert devices.stragglers(nn.BatchNorm2d(3).half(), dtype=torch.float16) == []  # the long counter is no straggler


def test_stragglers_on_another_device_name_where_they_stay() -> None:
    module = nn.BatchNorm2d(3)
    assert devices.stragglers(module, device="cpu") == []
    assert devices.stragglers(module, device="meta") == [
        f"{name} ({kind}) stays on cpu" for name, kind in (
            ("weight", "parameter"), ("bias", "parameter"), ("running_mean", "buffer"), ("running_var", "buffer"),
            ("num_batches_tracked", "buffer"))]
    module.register_buffer("scratch", torch.zeros(3, device="meta"))  # left behind on a later device name
    assert devices.stragglers(module, device="cpu") == ["scratch (buffer) stays on meta"]


def test_a_dtype_conversion_that_leaves_statistics_behind_is_a_transfer_problem() -> None:
    observed = devices.dtype_transfer(context(PlainStatistics))
    assert observed.tried[:3] == [".double()", ".half()", ".to(torch.bfloat16)"]
    assert observed.problems[0] == "after .double(): running_mean (plain attribute) stays torch.float32"
    assert devices.dtype_transfer(context(nn.BatchNorm2d)).problems == []


def test_a_module_that_follows_every_move_has_no_transfer_problem() -> None:
    observed = devices.cuda_transfer(context(nn.BatchNorm2d), "cpu")
    assert observed == devices.Transfer([], [".to('cpu')", "constructed with device='cpu'"])


def parity_of(observed: torch.Tensor | None, expected: torch.Tensor, dtype: torch.dtype = torch.float32):
    ctx = context(nn.BatchNorm2d)
    measured(ctx, precision.working_dtype, value=torch.float64)
    parity = devices.Parity({}, {}, {})
    devices.compare(ctx, "q", observed, expected, dtype, 16, parity)
    return parity, ctx


def test_compare_reports_the_largest_error_relative_to_its_allowance() -> None:
    expected = torch.tensor([1000.0, 1.0], dtype=torch.float64)
    parity, ctx = parity_of(torch.tensor([1000.01, 1.001], dtype=torch.float64), expected)
    allowed = devices.allowed_error(ctx, torch.float32, expected, 16)
    assert math.isclose(parity.errors["q"], 0.001, rel_tol=1e-6)  # the small value, not the larger error
    assert math.isclose(parity.allowed["q"], float(allowed[1]), rel_tol=1e-9)
    assert math.isclose(parity.ratios["q"], 0.001 / float(allowed[1]), rel_tol=1e-6)


def test_a_missing_resized_or_non_finite_observation_is_infinitely_wrong() -> None:
    expected = torch.ones(3)
    for observed in (None, torch.ones(2), torch.ones(4), torch.tensor([1.0, float("nan"), 1.0])):
        assert parity_of(observed, expected)[0].ratios["q"] == float("inf")


def test_an_inf_where_the_value_overflows_the_dtype_is_no_error() -> None:
    expected = torch.tensor([80000.0, 1.0])  # beyond float16's largest value, 65504
    assert parity_of(torch.tensor([float("inf"), 1.0]), expected, torch.float16)[0].ratios["q"] == 0.0
    assert parity_of(torch.tensor([float("inf"), 1.0]), expected, torch.float32)[0].ratios["q"] == float("inf")
    assert parity_of(torch.tensor([1.0, 1.0]), expected, torch.float16)[0].ratios["q"] > 100  # only inf matches inf


def test_an_inf_beyond_the_negative_end_of_the_range_matches_only_minus_inf() -> None:
    expected = torch.tensor([-80000.0, 1.0])  # below float16's lowest value, -65504
    assert parity_of(torch.tensor([float("-inf"), 1.0]), expected, torch.float16)[0].ratios["q"] == 0.0
    assert parity_of(torch.tensor([0.0, 1.0]), expected, torch.float16)[0].ratios["q"] > 100


def test_an_emptied_statistic_matches_only_an_empty_one() -> None:
    matching = parity_of(torch.zeros(0), torch.zeros(0))[0]
    assert (matching.ratios["q"], matching.errors["q"], matching.allowed["q"]) == (0.0, 0.0, 0.0)
    assert parity_of(torch.zeros(3), torch.zeros(0))[0].ratios["q"] == float("inf")
    assert parity_of(None, torch.zeros(0))[0].ratios["q"] == float("inf")


def test_the_allowance_is_never_tighter_than_the_class_s_working_precision() -> None:
    ctx = context(nn.BatchNorm2d)
    one = torch.ones(1, dtype=torch.float64)
    measured(ctx, precision.working_dtype, value=torch.float32)
    assert float(devices.allowed_error(ctx, torch.float64, one, 16)) == \
        float(devices.allowed_error(ctx, torch.float32, one, 16))


def test_a_correct_module_on_the_cpu_matches_the_reference_in_every_quantity() -> None:
    parity = devices.cuda_parity(context(nn.BatchNorm2d), torch.float32, "cpu")
    assert set(parity.ratios) == {"train output", "input gradient", "weight gradient", "bias gradient",
                                  "running_mean", "running_var", "eval output"}
    assert all(ratio <= 1 for ratio in parity.ratios.values()), parity.ratios


def test_without_running_statistics_parity_compares_the_training_quantities_only() -> None:
    class Stateless(nn.BatchNorm2d):
        def __init__(self, num_features: int) -> None:
            super().__init__(num_features, track_running_stats=False)

    parity = devices.cuda_parity(context(Stateless), torch.float32, "cpu")
    assert set(parity.ratios) == {"train output", "input gradient", "weight gradient", "bias gradient"}
    assert all(ratio <= 1 for ratio in parity.ratios.values()), parity.ratios


def test_the_allowance_grows_with_the_values_each_channel_reduces_over(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = context(nn.BatchNorm2d)
    lengths = []
    monkeypatch.setattr(devices, "compare", lambda ctx, name, observed, expected, dtype, n, parity: lengths.append(n))
    devices.cuda_parity(ctx, torch.float32, "cpu")
    assert len(lengths) == 7 and set(lengths) == {ctx.values_per_channel(ctx.primary_rank, 4)}


def test_with_cuda_present_the_checks_run_only_when_it_is_requested(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.cuda_unavailable(context(nn.BatchNorm2d, devices=("cpu",))) == \
        "CUDA not requested (run with --device cuda or --device auto)"
    assert devices.cuda_unavailable(context(nn.BatchNorm2d, devices=("cpu", "cuda"))) == ""


class RaisesInEval(nn.BatchNorm2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            raise RuntimeError("eval is not supported")
        return super().forward(x)


def test_a_forward_that_raises_without_any_conversion_is_told_apart_per_mode() -> None:
    ctx = context(RaisesInEval)
    assert devices.raises_natively(ctx, train=False) and not devices.raises_natively(ctx, train=True)
    assert not devices.raises_natively(context(nn.BatchNorm2d), train=True)


class Float64Statistics(nn.BatchNorm2d):
    """Takes device= like torch's layers, but keeps its running statistics in float64."""

    def __init__(self, num_features: int, device: str | None = None) -> None:
        super().__init__(num_features, device=device)
        self.running_mean = self.running_mean.double()
        self.running_var = self.running_var.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        view = (1, -1, 1, 1)
        if self.training:
            mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
            n = x.numel() / x.shape[1]
            with torch.no_grad():
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), 0.1)
                self.running_var.lerp_((var * n / (n - 1)).to(self.running_var.dtype), 0.1)
        else:
            mean, var = self.running_mean.to(x.dtype), self.running_var.to(x.dtype)
        y = (x - mean.view(view)) / (var.view(view) + self.eps).sqrt()
        return y * self.weight.view(view) + self.bias.view(view)


def test_a_module_constructed_on_the_device_is_judged_as_constructed_not_converted() -> None:
    """.to() converts the float64 statistics and all is well; device= alone leaves them float64."""
    transfer = devices.cuda_transfer(context(Float64Statistics), "cpu")
    assert transfer.tried == [".to('cpu')", "constructed with device='cpu'"]
    assert transfer.problems and all("constructed with device='cpu'" in p for p in transfer.problems)
    assert any("running_mean is torch.float64 on cpu" in p for p in transfer.problems)


class EvalOutputElsewhere(nn.BatchNorm2d):
    """Eval returns its output on another device (meta stands in for a GPU on this machine)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y if self.training else torch.empty_like(y, device="meta")


def test_an_output_on_another_device_than_its_input_is_a_forward_problem() -> None:
    ctx = context(EvalOutputElsewhere)
    x = devices.sample(ctx, "cpu", torch.float32, salt=300)
    assert devices.forward_problems(ctx, devices.build_raw(ctx, "cpu", torch.float32), x, "after .to('cpu')") == [
        "eval-mode forward after .to('cpu') returns torch.float32 on meta for a torch.float32 input on cpu"]


class IgnoresDtype(nn.BatchNorm2d):
    """Takes dtype= like torch's layers, but keeps its running statistics in float32."""

    def __init__(self, num_features: int, dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, dtype=dtype)
        self.running_mean = self.running_mean.float()
        self.running_var = self.running_var.float()


def test_a_module_constructed_with_a_dtype_is_judged_as_constructed_not_converted() -> None:
    transfer = devices.dtype_transfer(context(IgnoresDtype))
    assert transfer.problems == [
        "constructed with dtype=torch.float64: running_mean (buffer) stays torch.float32",
        "constructed with dtype=torch.float64: running_var (buffer) stays torch.float32"]


class FailsTrainingWhenFlagged(EvalOutputElsewhere):
    """Training raises once `flagged` is set (never in a freshly built module); eval answers elsewhere."""

    flagged = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.flagged:
            raise RuntimeError("flagged")
        return super().forward(x)


def test_a_training_forward_that_raises_does_not_stop_the_eval_forward_being_judged() -> None:
    ctx = context(FailsTrainingWhenFlagged)
    module = devices.build_raw(ctx, "cpu", torch.float32)
    module.flagged = True
    x = devices.sample(ctx, "cpu", torch.float32, salt=300)
    problems = devices.forward_problems(ctx, module, x, "after .to('cpu')")
    assert [p.split(" ")[0] for p in problems] == ["train-mode", "eval-mode"]
    assert "raises RuntimeError: flagged" in problems[0] and "on meta" in problems[1]


class StatisticsLeaveWhenFlagged(nn.BatchNorm2d):
    """Once `flagged`, each step re-binds running_mean on another device (meta stands in for a GPU)."""

    flagged = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if self.flagged:
            self.running_mean = self.running_mean.to("meta")
        return y


def test_running_statistics_left_on_another_device_after_a_step_are_a_forward_problem() -> None:
    ctx = context(StatisticsLeaveWhenFlagged)
    module = devices.build_raw(ctx, "cpu", torch.float32)
    module.flagged = True
    problems = devices.forward_problems(ctx, module, devices.sample(ctx, "cpu", torch.float32, salt=300), "here")
    assert problems[0] == "after a train-mode step here, running_mean is torch.float32 on meta"


class WithoutAffine(nn.BatchNorm2d):
    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, affine=False)


class AffineInBuffers(nn.BatchNorm2d):
    """gamma and beta registered as buffers: no gradients to compare."""

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        weight, bias = self.weight.detach().clone(), self.bias.detach().clone()
        del self.weight, self.bias
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)


@pytest.mark.parametrize("cls", [WithoutAffine, AffineInBuffers])
def test_affine_gradients_are_compared_only_for_affine_parameters(cls: type) -> None:
    parity = devices.cuda_parity(context(cls), torch.float32, "cpu")
    assert set(parity.ratios) == {"train output", "input gradient", "running_mean", "running_var", "eval output"}


def test_the_cuda_checks_say_why_they_cannot_run() -> None:
    reason = devices.cuda_unavailable(context(nn.BatchNorm2d))
    if torch.cuda.is_available():
        assert reason == "CUDA not requested (run with --device cuda or --device auto)"
        assert devices.cuda_unavailable(context(nn.BatchNorm2d, devices=("cpu", "cuda"))) == ""
    else:
        assert reason == devices.NO_CUDA


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_half_sample_has_the_requested_dtype_and_device(dtype: torch.dtype) -> None:
    x = devices.sample(context(nn.BatchNorm2d), "cpu", dtype, salt=1)
    assert x.dtype == dtype and x.device.type == "cpu" and bool(torch.isfinite(x).all())
