"""The environment block of every result: what ran the check, GPU facts only where a GPU is."""

from __future__ import annotations

import platform

import pytest
import torch

from bnconform import result


def test_without_a_gpu_no_cuda_facts_are_claimed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "12.4")  # a CUDA build on a machine without a GPU
    env = result.environment()
    assert (env["cuda"], env["cudnn"], env["gpu"]) == (None, None, None)
    assert env["torch"] == torch.__version__ and env["python"] == platform.python_version()


def test_with_a_gpu_its_facts_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    names = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: names.append(index) or "Test GPU")
    env = result.environment()
    assert (env["cuda"], env["cudnn"], env["gpu"]) == ("12.4", 90100, "Test GPU") and names == [0]


@pytest.mark.parametrize(("processor", "machine", "shown"), [("x86_64", "amd64", "x86_64"), ("", "aarch64", "aarch64")])
def test_the_cpu_is_the_processor_or_else_the_machine(
    monkeypatch: pytest.MonkeyPatch, processor: str, machine: str, shown: str
) -> None:
    monkeypatch.setattr(platform, "processor", lambda: processor)
    monkeypatch.setattr(platform, "machine", lambda: machine)
    assert result.environment()["cpu"] == shown
