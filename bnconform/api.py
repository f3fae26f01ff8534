"""The typed public API: run a conformance check and get the canonical result dict."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from bnconform.construct import Builder
from bnconform.context import RunContext, RunSettings
from bnconform.errors import UsageError
from bnconform.fingerprint import fingerprint
from bnconform.plots import plot_data
from bnconform.registry import known_codes
from bnconform.result import assemble
from bnconform.runner import run_checks
from bnconform.spec import load_spec
from bnconform.target import load_target

FAIL_ON = ("error", "warning", "info")


def run_check(
    target: str,
    *,
    spec: str = "pytorch",
    init: Mapping[str, object] | None = None,
    seed: int = 0,
    device: str = "cpu",
    profile: str = "default",
    ignore: Iterable[str] = (),
    fail_on: str = "error",
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """Check `target` ("module:Name" or "file.py:Name") against `spec`; raises UsageError on bad input."""
    started = time.perf_counter()
    ignore = validate_codes(ignore)
    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on {fail_on!r} is not one of {', '.join(FAIL_ON)}")
    device, devices = resolve_device(device)
    if not 0 < timeout_s < float("inf"):  # join(-1) returns at once: every call would "hang"
        raise UsageError(f"--timeout {timeout_s:g} must be a positive number of seconds")
    loaded_spec = load_spec(spec)
    loaded_target = load_target(target)
    builder = Builder(loaded_target, init)
    features = builder.pinned("num_features")
    settings = RunSettings(
        seed=seed, device=device, profile=profile, timeout_s=timeout_s, devices=tuple(devices),
        num_features=features if isinstance(features, int) and features >= 1 else RunSettings.num_features,
    )
    ctx = RunContext(loaded_spec, builder, settings)
    with single_threaded_torch():
        checks = run_checks(ctx, ignore)
    return assemble(
        ctx=ctx, target=loaded_target, checks=checks, fingerprint=fingerprint(ctx),
        plots=plot_data(ctx, checks), duration=time.perf_counter() - started,
        settings={"seed": seed, "devices": devices, "profile": profile, "fail_on": fail_on,
                  "ignore": sorted(ignore), "timeout_s": timeout_s},
    )


@contextlib.contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Probe tensors are tiny: intra-op threads only add contention (badly so on a busy 2-core CI)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def resolve_device(device: str) -> tuple[str, list[str]]:
    """The main run's device and every device the run covers.

    "cpu" -> cpu only; "cuda" -> everything on CUDA (refused without a CUDA device); "auto"
    -> the main conformance run on the CPU plus the CUDA checks (device-parity,
    device-transfer, dtype-support) when a CUDA device is available. Checked here, at the
    boundary: otherwise every probe would fail on the device and the run would end in a
    wall of blocked checks instead of one usage error.
    """
    import torch

    if device not in ("cpu", "cuda", "auto"):
        raise UsageError(f"--device {device!r} is not one of cpu, cuda, auto")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device available (torch.cuda.is_available() is "
                         "False); use --device cpu or --device auto")
    if device == "auto":
        return "cpu", ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    return device, [device]


def validate_codes(codes: Iterable[str]) -> list[str]:
    known = known_codes()
    codes = list(codes)
    for code in codes:
        if code not in known:
            raise UsageError(f"--ignore {code!r} is not a finding code; known codes: {', '.join(known)}")
    return codes
