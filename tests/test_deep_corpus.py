"""The deep corpus (tests/corpus/deep/): each module makes exactly its own deep code fire.

Same contract as tests/test_corpus.py: the expected code is reported, and no other
ERROR-level code fires. CPU cases run everywhere; the CUDA cases need a GPU and skip
cleanly without one (they really run device-parity/device-transfer on it).
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch

DEEP = Path(__file__).parent / "corpus" / "deep"
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


class DeepCase(NamedTuple):
    module: str  # tests.corpus.deep.<module>:BatchNorm
    expected_code: str
    device: str = "cpu"  # "auto": the CPU run plus the CUDA checks


CPU_CASES = [
    DeepCase("device_transfer_plain_attribute", "device-transfer"),
    DeepCase("dtype_support_half_overflow", "dtype-support"),
    DeepCase("memory_format_channels_last_view", "memory-format"),
    DeepCase("non_contiguous_view", "non-contiguous"),
    DeepCase("sequence_reset_counter", "sequence-mismatch"),
    DeepCase("gradcheck_eval_backward", "gradcheck"),
]
CUDA_CASES = [DeepCase("device_forward_cpu_tensor", "device-transfer", device="auto")]
CPU_CLEAN = ["device_forward_cpu_tensor"]  # its bug (a CPU tensor made in forward) needs a GPU to show


def _describe(result: dict[str, Any]) -> str:
    lines = [f"{f['severity']:7} {f['code']}: {f['message']}" for f in result["findings"]]
    lines += [f"{c['status']:7} {c['id']}: {c['reason']}"
              for c in result["checks"] if c["status"] in ("errored", "blocked")]
    return "\n".join(lines) or "(no findings)"


def _check(case: DeepCase) -> dict[str, Any]:
    from bnconform.api import run_check

    return run_check(f"tests.corpus.deep.{case.module}:BatchNorm", device=case.device, seed=0)


def _assert_fires_alone(case: DeepCase, result: dict[str, Any]) -> None:
    codes = {f["code"] for f in result["findings"]}
    errors = {f["code"] for f in result["findings"]
              if f["severity"] == "error" and f.get("caused_by") != case.expected_code}  # its consequences are related
    assert case.expected_code in codes, f"{case.expected_code} not reported:\n{_describe(result)}"
    unrelated = sorted(errors - {case.expected_code})
    assert not unrelated, f"unrelated errors {unrelated}:\n{_describe(result)}"
    assert not [c for c in result["checks"] if c["status"] == "errored"], _describe(result)


@pytest.mark.parametrize("case", CPU_CASES, ids=lambda c: c.module)
def test_deep_case_on_cpu(case: DeepCase) -> None:
    _assert_fires_alone(case, _check(case))


@pytest.mark.parametrize("module", CPU_CLEAN)
def test_gpu_only_bug_is_clean_on_cpu(module: str) -> None:
    result = _check(DeepCase(module, "", device="cpu"))
    assert not [f for f in result["findings"] if f["severity"] in ("error", "warning")], _describe(result)


@pytest.mark.cuda
@CUDA
@pytest.mark.parametrize("case", CUDA_CASES, ids=lambda c: c.module)
def test_deep_case_on_cuda(case: DeepCase) -> None:
    result = _check(case)
    _assert_fires_alone(case, result)
    finding = next(f for f in result["findings"] if f["code"] == case.expected_code)
    assert "cuda" in finding["message"] + finding["observed"]


def test_every_deep_module_has_a_case() -> None:
    modules = {p.stem for p in DEEP.glob("*.py")} - {"__init__"}
    assert modules == {c.module for c in CPU_CASES + CUDA_CASES}


@pytest.mark.parametrize("case", CPU_CASES + CUDA_CASES, ids=lambda c: c.module)
def test_docstring_names_the_expected_code(case: DeepCase) -> None:
    text = (DEEP / f"{case.module}.py").read_text()
    match = re.search(r'Expected finding under the "([\w-]+)" spec: ([a-z-]+)\.', text)
    assert match is not None and match.groups() == ("pytorch", case.expected_code)
    assert "# BUG" in text


def test_sequence_repro_is_runnable_and_shows_the_divergence() -> None:
    result = _check(DeepCase("sequence_reset_counter", "sequence-mismatch"))
    finding = next(f for f in result["findings"] if f["code"] == "sequence-mismatch")
    namespace: dict[str, Any] = {}
    exec(compile(finding["repro"], "<repro>", "exec"), namespace)  # noqa: S102 - our own snippet
    assert int(namespace["bn"].num_batches_tracked) != 0  # the reference says 0 after the reset
    assert "reset_running_stats()" in finding["repro"]
    assert len(finding["details"]["sequence"]) <= 8  # shrunk: build lines + a step + the reset


def test_the_dtype_repro_shows_an_overflowing_running_variance() -> None:
    """The tutorial's float16 variance overflows in running_var while its output stays finite: the
    snippet must show the tensor that is wrong, under the class's own attribute name."""
    from bnconform.api import run_check

    result = run_check("bnconform.examples.tutorial:BatchNorm")
    finding = next(f for f in result["findings"] if f["code"] == "dtype-support")
    assert "print(torch.isfinite(bn.moving_var).all())" in finding["repro"]
    namespace: dict[str, Any] = {}
    exec(compile(finding["repro"], "<repro>", "exec"), namespace)  # noqa: S102 - our own snippet
    assert not bool(torch.isfinite(namespace["bn"].moving_var).all())


def test_the_state_dict_repro_shows_the_lost_affine_tensors() -> None:
    """Plain-attribute gamma/beta are not saved: the probe trains with non-default gamma and beta,
    so the repro must set them too or it prints 'same eval output: True' under a failure."""
    from bnconform.api import run_check

    result = run_check("tests.corpus.affine_params_plain:BatchNorm")
    finding = next(f for f in result["findings"] if f["code"] == "state-dict")
    assert "does not round-trip" in finding["message"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(finding["repro"], "<repro>", "exec"), {})  # noqa: S102 - our own snippet
    assert printed.getvalue() == "same eval output: False\n"


@pytest.mark.parametrize("target", ["tests.corpus.grad_mismatch:BatchNorm",
                                    "tests.corpus.norm_variance_estimator:BatchNorm"])
def test_the_gradient_repro_prints_the_input_gradient_error(target: str) -> None:
    """The error is large for the class and about 0 with torch's BatchNorm2d in its place."""
    from bnconform.api import run_check

    repro = next(f for f in run_check(target)["findings"] if f["code"] == "grad-mismatch")["repro"]
    module, name = target.split(":")
    torch_in_place = repro.replace(f"from {module} import {name}", f"from torch.nn import BatchNorm2d as {name}")
    assert torch_in_place != repro
    errors = []
    for snippet in (repro, torch_in_place):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(snippet, "<repro>", "exec"), {})  # noqa: S102 - our own snippet
        errors.append(float(printed.getvalue().rsplit(":", 1)[1]))
    assert errors[0] > 1e-4 and errors[1] < 1e-9
