"""Floating dtypes (float64/32/16, bfloat16, mixed precision, half overflow) and gradcheck.

gradcheck lives here, next to the other float64 numerics, because it needs the dtype
machinery (a module that runs in float64) more than the gradient probes of checks/gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bnconform.context import RunContext
from bnconform.findings import Severity
from bnconform.probes import devices, dtypes
from bnconform.probes import gradcheck as gradcheck_probes
from bnconform.registry import Verdict, check, failed, passed, skipped
from bnconform.repro import attr, snippet, spec_batch_norm


def dtype_devices(ctx: RunContext) -> list[str]:
    return [d for d in devices.requested_devices(ctx) if d == "cpu" or torch.cuda.is_available()]


def dtype_repro(ctx: RunContext, std: float) -> str:
    lines = [
        "bn = bn.half()",
        f"x = torch.randn(4, *x.shape[1:]) * {std:g} + 50  # float16's largest value is 65504",
        "bn.train(); y = bn(x.half())",
        "print(y.dtype, torch.isfinite(y).all())  # torch.nn.BatchNorm: torch.float16 True",
        f"print({reference_output(ctx)}.sub(y.double()).abs().max())  # against the spec's output in float64",
    ]
    if ctx.spec.track_running_stats:  # a running variance that overflows shows here, not in y
        running_var = attr(ctx, "running_var", "running_var")
        lines.append(f"print(torch.isfinite({running_var}).all())  # torch.nn.BatchNorm: True")
    return snippet(ctx, lines)


def reference_output(ctx: RunContext) -> str:
    """The spec's training output of x in float64, channel axis and eps included."""
    return spec_batch_norm(ctx, "x.double()")


@dataclass(frozen=True)
class ScaleReport:
    """How far up the activation-scale sweep one dtype pair gets, next to torch.nn.BatchNorm."""

    pair: str
    handles: str  # the largest scale passed with every smaller one ("std 1" when the sweep's first fails)
    torch_handles: str
    breaks: dtypes.Outcome | None  # the first scale that fails where torch's does not
    handled: tuple[str, ...] = ()  # the sweep's scales passed before the first failure, in order
    torch_handled: tuple[str, ...] = ()


def handled_prefix(passes: list[tuple[str, bool]]) -> tuple[str, ...]:
    handled: list[str] = []
    for label, ok in passes:
        if not ok:
            break
        handled.append(label)
    return tuple(handled)


def largest(passes: list[tuple[str, bool]]) -> str:
    handled = handled_prefix(passes)
    return handled[-1] if handled else dtypes.BASE.label


def scale_reports(outcomes: list[dtypes.Outcome]) -> list[ScaleReport]:
    """Per (device, dtype pair) of the sweep: the class's and torch's largest handled scale."""
    pairs: dict[tuple[str, str], list[dtypes.Outcome]] = {}
    for o in outcomes:
        if o.case.scale is not dtypes.BASE:
            pairs.setdefault((o.case.device, o.case.pair), []).append(o)
    reports = []
    for (device, pair), swept in pairs.items():
        breaks = next((o for o in swept if o.errors and o.torch_ok), None)
        own = [(o.case.scale.label, not o.errors) for o in swept]
        torch_passes = [(o.case.scale.label, o.torch_ok) for o in swept]
        reports.append(ScaleReport(f"{device} {pair}", largest(own), largest(torch_passes), breaks,
                                   handled_prefix(own), handled_prefix(torch_passes)))
    return reports


def scale_sentence(report: ScaleReport) -> str:
    assert report.breaks is not None
    # The sweep is not one axis (stds, then a large mean): name the scales, not "up to" one of them.
    return (f"{report.pair} breaks at input {report.breaks.case.scale.label} ({report.breaks.errors[0]}); "
            f"it handles {listed(report.handled)}; torch.nn.BatchNorm handles {listed(report.torch_handled)}")


def listed(scales: tuple[str, ...]) -> str:
    return ", ".join(scales) or f"only {dtypes.BASE.label}"


@check(
    "dtype-support",
    area="dtypes",
    title="float64, float32, float16 and bfloat16 work, within the dtype's tolerance, keeping dtypes,"
    " over the activation scales torch.nn.BatchNorm handles",
    severity="error",
    why="Mixed-precision training runs BatchNorm in float16/bfloat16: statistics computed in half overflow"
    " (x^2 > 65504) or lose precision, and buffers that change dtype lose the running averages' precision.",
    hint="Accumulate mean and variance in float32 for half inputs (xf = x.float()), cast the output back"
    " to x.dtype, and keep running statistics in the module's dtype: blend them in float32 and cast only"
    " the result (a batch variance cast to float16 before the blend overflows above 65504).",
    requires=("forward-failed",),
)
def dtype_support(ctx: RunContext) -> Verdict:
    """Error: wrong values at ordinary scales (std 1 in every dtype; std <= 100 in the swept half
    types). Warning: only larger activations break (where torch.nn.BatchNorm copes), or an output
    or buffer changes dtype. A scale torch breaks at too is a limit of the format: not reported."""
    outcomes = [o for device in dtype_devices(ctx) for o in ctx.probe(dtypes.dtype_support, device)]
    measured = {o.case.label: {name: {"error": o.parity.errors[name], "allowed": o.parity.allowed[name]}
                               for name in o.parity.ratios} | {"torch_handles": o.torch_ok} for o in outcomes}
    reports = scale_reports(outcomes)
    scales = {r.pair: {"handles": r.handles, "torch_handles": r.torch_handles,
                       "breaks_at": r.breaks.case.scale.label if r.breaks else None} for r in reports}
    at_ordinary = [o for o in outcomes if o.case.scale.ordinary and (o.torch_ok or o.case.scale is dtypes.BASE)]
    ordinary = [e for o in at_ordinary for e in o.errors]
    beyond = [scale_sentence(r) for r in reports if r.breaks and not r.breaks.case.scale.ordinary]
    wrong_dtypes = [d for o in outcomes for d in o.dtypes]
    if not ordinary and not beyond and not wrong_dtypes:
        return passed(scales=scales, **measured)
    # A dtype that changes at every scale comes before an overflow at large ones: fix it first.
    problems = ordinary + wrong_dtypes + beyond
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    first = (ordinary_headline(at_ordinary) if ordinary
             else "Outputs or buffers change dtype: " if wrong_dtypes else "Large activations break low precision: ")
    breaking = next((r.breaks for r in reports if r.breaks), None)
    return failed(
        first + problems[0] + more,
        expected="each dtype within its allowed error (specs/README.md) at every scale torch.nn.BatchNorm"
        " handles; output in the input's dtype; running statistics in the module's dtype",
        observed="; ".join(problems[:6]),
        severity=None if ordinary else Severity.WARNING,
        repro=dtype_repro(ctx, max(breaking.case.scale.stds) if breaking else 300.0),
        details={"errors": ordinary, "beyond_ordinary": beyond, "dtypes": wrong_dtypes, "scales": scales,
                 **dtype_causes(ordinary, beyond, wrong_dtypes)},
        measurements={"scales": scales, **measured},
    )


def ordinary_headline(at_ordinary: list[dtypes.Outcome]) -> str:
    """What the first problem shown is: a call that raised compared no values."""
    first = next(o for o in at_ordinary if o.errors)
    if first.raised:
        return "Low precision raises at ordinary activation scales: "
    return "Wrong values in low precision at ordinary activation scales: "


def dtype_causes(ordinary: list[str], beyond: list[str], wrong_dtypes: list[str]) -> dict[str, list[str]]:
    """Measured: running statistics that keep their dtype while the module converts (and nothing
    else) are the registration defect device-transfer sees too. Values wrong in a precision are
    the class's own arithmetic: the table's (cancellation only)."""
    if wrong_dtypes and not ordinary and not beyond and all(": running_" in d for d in wrong_dtypes):
        return {"explained_by": ["running-stats-not-buffers", "running-stats-shape", "device-transfer"]}
    return {}


@check(
    "gradcheck",
    area="gradients",
    title="The implementation's backward matches finite differences in float64 (train and eval)",
    severity="error",
    why="A hand-written backward (autograd.Function) that is wrong in some mode or for some input trains"
    " the network with wrong gradients; grad-mismatch only compares one training step with the reference.",
    hint="Run torch.autograd.gradcheck on your function in float64 for train and eval mode; fix the"
    " backward formula it reports (or drop the custom backward and let autograd differentiate).",
    # A class whose mode follows grad mode, or whose eval updates its statistics, changes between
    # the finite-difference evaluations: bnconform.diagnosis lists a failure here under those.
    requires=("forward-failed",),
)
def gradcheck(ctx: RunContext) -> Verdict:
    if ctx.dtype != torch.float64:
        return skipped("the module does not run in float64, which gradcheck needs")
    wrong = {f"{r.mode} {name}": text for r in (ctx.probe(gradcheck_probes.directional, t) for t in (True, False))
             for name, text in r.wrong.items()}
    full = ctx.probe(gradcheck_probes.full_gradcheck) if ctx.settings.profile == "thorough" else None
    if full is not None:
        wrong.update({f"{mode} (torch.autograd.gradcheck)": text for mode, text in full.gradcheck.items() if text})
    if wrong:
        described = "; ".join(f"{k}: {v}" for k, v in wrong.items())
        return failed(f"Backward disagrees with finite differences ({described})",
                      expected="analytic and numerical directional derivatives agree (atol 1e-5, rtol 1e-3)",
                      observed=described, repro=gradcheck_repro(ctx), details=wrong)
    second = {m: t for m, t in (full.gradgradcheck.items() if full else ()) if t}
    if second:
        described = "; ".join(f"{m}: {t}" for m, t in second.items())
        return failed(f"gradgradcheck fails ({described}): second derivatives are wrong or unsupported",
                      expected="torch.autograd.gradgradcheck passes", observed=described,
                      severity=Severity.INFO, repro=gradcheck_repro(ctx, second_order=True))
    return passed(modes=["train", "eval"], full=full is not None)


def gradcheck_repro(ctx: RunContext, second_order: bool = False) -> str:
    fn = "gradgradcheck" if second_order else "gradcheck"
    w, b = attr(ctx, "weight", "weight"), attr(ctx, "bias", "bias")
    return snippet(ctx, [
        "from torch.func import functional_call",
        "x.requires_grad_(True)",
        f"w, b = (torch.randn({w}.shape, dtype=torch.float64, requires_grad=True) for _ in range(2))",
        f"f = lambda x, w, b: functional_call(bn, {{{w[3:]!r}: w, {b[3:]!r}: b}}, (x,))",
        "for mode in (True, False):",
        "    bn.train(mode)",
        f"    print('train' if mode else 'eval', torch.autograd.{fn}(f, (x, w, b), raise_exception=False))",
    ])
