"""Devices and conversions: state follows .to()/.cuda()/.double()/.half(); CUDA matches the spec.

The dtype part of device-transfer runs everywhere. Everything that needs a GPU is skipped
with the reason "no CUDA device" when there is none: a skip, never a pass.
"""

from __future__ import annotations

import torch

from bnconform.context import RunContext
from bnconform.probes import devices
from bnconform.registry import Verdict, check, failed, skipped
from bnconform.repro import snippet


def transfer_repro(ctx: RunContext, cuda: bool) -> str:
    if cuda:
        body = ["bn = bn.float().to('cuda')", "print({n: t.device for n, t in vars(bn).items() if torch.is_tensor(t)})",
                "y = bn(x.float().cuda())  # raises, or returns a CPU tensor", "print(y.device)"]
    else:
        body = ["bn = bn.float().half()",
                "print({n: t.dtype for n, t in [*bn.named_parameters(), *bn.named_buffers()]})",
                "print({n: t.dtype for n, t in vars(bn).items() if torch.is_tensor(t)})  # plain attributes",
                "y = bn(x.half())", "print(y.dtype)  # torch.float16 expected"]
    return snippet(ctx, body)


@check(
    "device-transfer",
    area="devices",
    title="Parameters, buffers and forward follow .to()/.cuda()/.double()/.half() (and device=/dtype=)",
    severity="error",
    why="A tensor that stays behind on .to(device/dtype), or one created inside forward with a fixed device"
    " or dtype, makes the model crash on the GPU ('Expected all tensors to be on the same device') or"
    " silently compute and return another dtype in mixed precision.",
    hint="Keep every tensor state in nn.Parameter or register_buffer (never a plain attribute), let module"
    " conversions reach all of them (an _apply or to() override that skips a buffer keeps it behind), and"
    " create tensors inside forward with device=x.device, dtype=x.dtype (or torch.ones_like / new_ones); a"
    " forward that computes in float32 casts its result back to x.dtype.",
    requires=("forward-failed",),
)
def device_transfer(ctx: RunContext) -> Verdict:
    cpu = ctx.probe(devices.dtype_transfer)
    reason = devices.cuda_unavailable(ctx)
    cuda = devices.Transfer([], []) if reason else ctx.probe(devices.cuda_transfer)
    problems = cpu.problems + cuda.problems
    tried = cpu.tried + cuda.tried
    if not problems:
        measurements = {"conversions": tried, "cuda": f"skipped: {reason}" if reason else "checked"}
        return Verdict("passed", reason=f"CUDA parts skipped: {reason}" if reason else "",
                       measurements=measurements)
    return failed(
        f"State or forward does not follow a conversion: {problems[0]}"
        + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
        expected="every parameter, buffer and output on the target device and dtype",
        observed="; ".join(problems[:6]),
        repro=transfer_repro(ctx, bool(cuda.problems) and not cpu.problems),
        details={"problems": problems, "conversions": tried},
        device="cuda" if cuda.problems and not cpu.problems else None,
    )


@check(
    "device-parity",
    area="devices",
    title="On CUDA, outputs, gradients and running statistics match the float64 CPU reference",
    severity="error",
    why="A layer that is right on the CPU can be wrong on the GPU (another code path, float32 reductions,"
    " a custom kernel): the model you test is not the model you train.",
    hint="Run the reproduction on the GPU and compare with the CPU; look for device-specific branches and"
    " reductions done in half precision.",
    requires=("device-transfer",),
)
def device_parity(ctx: RunContext) -> Verdict:
    reason = devices.cuda_unavailable(ctx)
    if reason:
        return skipped(reason)
    results = {str(d).removeprefix("torch."): ctx.probe(devices.cuda_parity, d) for d in (torch.float32, torch.float64)}
    wrong = [f"{dtype} {name}: error {p.errors[name]:.3g} > allowed {p.allowed[name]:.3g}"
             for dtype, p in results.items() for name, ratio in p.ratios.items() if not ratio <= 1]
    measured = {f"{dtype} {name}": {"error": p.errors[name], "allowed": p.allowed[name]}
                for dtype, p in results.items() for name in p.ratios}
    if not wrong:
        return Verdict("passed", measurements=measured)
    return failed(
        "On CUDA the module differs from the float64 CPU reference: " + "; ".join(wrong[:4]),
        expected="within the spec's tolerance for the dtype (see specs/README.md, tolerances by dtype)",
        observed="; ".join(wrong),
        repro=snippet(ctx, ["cpu = bn.float()", "import copy; gpu = copy.deepcopy(cpu).cuda()",
                            "y_cpu, y_gpu = cpu(x.float()), gpu(x.float().cuda())",
                            "print((y_cpu - y_gpu.cpu()).abs().max())"]),
        measurements=measured,
        device="cuda",
    )
