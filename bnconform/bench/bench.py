"""One benchmark run, step by step: check, ceiling, memory, timing, comparison."""

from __future__ import annotations

import argparse
import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bnconform.construct import Builder
from bnconform.target import Target, load_target

from .bandwidth import PASSES, ceiling
from .cases import DTYPES, Setting, build_cases, build_target, build_torch, make_input, run_user
from .compare import compare, regressions, require_overlap
from .conform import check_shape, quick_check
from .memory import growth, peak_bytes, warm_up
from .results import Memory, Report, timings_from
from .shapes import Shape, select_shapes, shape_text, torch_class
from .timing import FULL, QUICK, run_benchmarks, saved_path

MEMORY_METHOD = {
    "cpu": "live tensor storage created by the pass (a TorchDispatchMode sees every operator's "
           "outputs), inputs excluded; not allocator overhead or autograd's C++ nodes",
    "cuda": "torch.cuda.max_memory_allocated during the pass minus memory_allocated before it",
}


def bench(args: argparse.Namespace, baseline: dict[str, Any] | None,
          threshold: float | None) -> tuple[Report, list[Path]]:
    """The whole run with --threads torch threads (restored afterwards).

    Bad input (target, shapes, a baseline without this run's cases) is refused before any
    set-up. gc.freeze: the objects of every module imported so far (torch, and torch._dynamo
    that a dispatch mode pulls in) are never garbage, so gc.collect need not walk them.
    """
    target = load_target(args.target)
    plan = Plan(target, Builder(target), Setting(device=args.device, dtype=DTYPES[args.dtype]))
    element_size = torch.empty((), dtype=plan.setting.dtype).element_size()
    plan.shapes = select_shapes(args.shapes, args.full, args.device, element_size)
    if baseline is not None:
        require_overlap(baseline, [("target", p, s, args.dtype, args.device) for s in plan.shapes for p in PASSES])
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    warm_up()
    gc.freeze()
    try:
        return run_plan(args, plan, baseline, threshold)
    finally:
        gc.unfreeze()
        torch.set_num_threads(threads)


@dataclass
class Plan:
    """What one run times: the target, where and in which dtype, and the shapes."""

    target: Target
    builder: Builder  # built up front: a constructor bnconform cannot call is refused early
    setting: Setting
    shapes: list[Shape] = field(default_factory=list)


def run_plan(args: argparse.Namespace, plan: Plan, baseline: dict[str, Any] | None,
             threshold: float | None) -> tuple[Report, list[Path]]:
    from .command import warn

    builder, setting, shapes = plan.builder, plan.setting, plan.shapes
    conformance = quick_check(builder, shapes[0], args.device)
    if not conformance.conforms:
        warn(f"the target does not conform (timing it anyway): {conformance.detail}")
    references = ", ".join(sorted({f"torch.nn:{torch_class(len(s)).__name__}" for s in shapes}))
    report = Report(target=plan.target.text, reference=references, device=args.device, dtype=args.dtype,
                    threads=torch.get_num_threads(), ceiling=ceiling(args.device),
                    conformance=conformance, memory_method=MEMORY_METHOD[args.device])
    report.memory = [peak_memory(builder, shape, setting) for shape in shapes]
    report.growth = growth_per_step(builder, check_shape(shapes[0]), setting)
    cases = build_cases(plan.target, builder, shapes, PASSES, setting)
    json_path = Path(args.output) / "bnconform-bench.json"
    storage = Path(".benchmarks")
    run = run_benchmarks(cases, report.summary(), json_path, FULL if args.full else QUICK, args.save, storage)
    report.timings = timings_from(run, report.ceiling)
    written = [json_path]
    if args.save and (saved := saved_path(storage, args.save)):
        written.append(saved)
    if baseline is not None:
        report.changes = compare(baseline, run)
        report.threshold = threshold
        report.slower = regressions(report.changes, threshold) if threshold is not None else []
    return report, written


def peak_memory(builder: Builder, shape: Shape, setting: Setting) -> Memory:
    """Peak of one forward+backward of each implementation on the same x and dy."""
    x = make_input(shape, setting).requires_grad_(True)
    dy = make_input(shape, setting, 1000)
    peaks = {}
    for role, module in (("target", build_target(builder, shape, setting)), ("torch", build_torch(shape, setting))):
        params = [p for p in module.parameters() if p.requires_grad]
        module.train()

        def step(m: torch.nn.Module = module, p: list[torch.Tensor] = params) -> None:
            torch.autograd.grad(m(x), [x, *p], dy)

        peaks[role] = run_user(lambda s=step: peak_bytes(s, setting.device),
                               f"forward+backward of {shape_text(shape)}")
    return Memory(shape, int(peaks["target"]), int(peaks["torch"]))


def growth_per_step(builder: Builder, shape: Shape, setting: Setting) -> dict[str, Any]:
    modules = {"target": build_target(builder, shape, setting), "torch": build_torch(shape, setting)}
    return {role: run_user(lambda m=m: growth(m, lambda: make_input(shape, setting), setting.device),
                           f"training steps of {shape_text(shape)}")
            for role, m in modules.items()}
