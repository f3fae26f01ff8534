"""The quick forward check run before timing: a non-conforming target is never timed silently.

One training forward and then one eval forward (which reads the running statistics the
training step updated), each compared with torch.nn.BatchNormNd from the same default state
on the same input, in float32 on the benchmark's device. This is not `bnconform check`: it
catches an implementation whose outputs are wrong, not every convention it breaks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bnconform.construct import Builder

from .cases import Setting, build_target, build_torch, make_input, run_user
from .shapes import Shape, shape_text

ATOL = 1e-4
RTOL = 1e-4
CHECK_BATCH = 8  # a few samples are enough to compare statistics; keeps the check instant


@dataclass(frozen=True)
class Conformance:
    conforms: bool
    detail: str  # what differed, or what was compared


def check_shape(shape: Shape) -> Shape:
    """The benchmark's first shape with a small batch and spatial extent (the rank is what matters)."""
    return (min(shape[0], CHECK_BATCH), shape[1], *(min(s, 8) for s in shape[2:]))


def quick_check(builder: Builder, shape: Shape, device: str, seed: int = 0) -> Conformance:
    setting = Setting(device=device, dtype=torch.float32, seed=seed)
    small = check_shape(shape)
    target, reference = build_target(builder, small, setting), build_torch(small, setting)
    x = make_input(small, setting)
    problems = []
    with torch.no_grad():
        for mode in ("train", "eval"):
            target.train(mode == "train")
            reference.train(mode == "train")
            got = run_user(lambda t=target: t(x), f"the quick check's {mode} forward of {shape_text(small)}")
            want = reference(x)
            problems += compare(got, want, f"{mode} forward" + (" after one training step" * (mode == "eval")))
    if problems:
        return Conformance(False, "; ".join(problems))
    return Conformance(True, f"train and eval forward match torch within atol={ATOL:g}, rtol={RTOL:g} "
                             f"on {shape_text(small)}")


def compare(got: object, want: torch.Tensor, what: str) -> list[str]:
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        return [f"{what} returned {shape}, expected {tuple(want.shape)}"]
    got = got.float()
    if torch.allclose(got, want, atol=ATOL, rtol=RTOL):
        return []
    worst = (got - want).abs().nan_to_num(nan=float("inf")).max().item()
    return [f"{what} differs from torch by up to {worst:.3g}"]
