"""Global torch state is recorded, reported and restored around user calls; inputs a call
writes into are recorded and put back (issue 9)."""

from __future__ import annotations

import torch

from bnconform import fence


def test_flush_denormal_is_read_by_probing() -> None:
    assert fence.flush_denormal_enabled() is False
    if not torch.set_flush_denormal(True):  # not supported on this CPU: nothing to read
        return
    try:
        assert fence.flush_denormal_enabled() is True
    finally:
        torch.set_flush_denormal(False)


def test_changes_name_each_setting_and_restore_undoes_them() -> None:
    before = fence.snapshot()
    torch.set_grad_enabled(False)
    torch.set_default_dtype(torch.float64)
    torch.autograd.set_detect_anomaly(True)
    torch.manual_seed(1234)
    try:
        changed = fence.changes(before, fence.snapshot())
    finally:
        fence.restore(before)
    assert set(changed) >= {"grad mode (torch.is_grad_enabled())", "default dtype (torch.get_default_dtype())",
                            "anomaly mode (torch.autograd.set_detect_anomaly)",
                            "CPU random number generator (torch.manual_seed / draws)"}
    assert changed["grad mode (torch.is_grad_enabled())"] == ("True", "False")
    assert fence.changes(before, fence.snapshot()) == {}


def test_a_fenced_call_cannot_leak_state_into_what_runs_after_it() -> None:
    state = fence.snapshot()
    with fence.fenced(state):
        torch.set_grad_enabled(False)
        torch.set_default_dtype(torch.float16)
        torch.set_num_threads(max(1, torch.get_num_threads() + 1))
    assert torch.is_grad_enabled()
    assert torch.get_default_dtype() == torch.float32
    assert torch.get_num_threads() == state.num_threads


class WritesInput(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.mul_(2.0)
        return x  # the output is the input itself


def test_an_input_written_in_place_is_recorded_put_back_and_the_output_kept() -> None:
    x = torch.arange(6.0).reshape(2, 3)
    with fence.watching_inputs() as watch:
        y = WritesInput()(x)
    assert watch.writes == ["5 of 6 input values changed (input shape [2, 3])"]  # 0 * 2 == 0
    assert torch.equal(x, torch.arange(6.0).reshape(2, 3))  # the caller's input is as it passed it
    assert torch.equal(y, torch.arange(6.0).reshape(2, 3) * 2)  # the class's output survives


def test_a_module_that_leaves_its_input_alone_is_not_recorded() -> None:
    x = torch.randn(4, 3)
    with fence.watching_inputs() as watch:
        torch.nn.BatchNorm1d(3)(x)
    assert watch.writes == []
