"""The typed public API.

`check(target)` returns a typed `Report`; `assert_conforms(target)` raises an AssertionError
listing the findings and their fixes; `run_check` is the one call that checks one target and
returns the canonical result dict (the supervised worker replaces exactly this call).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bnconform.construct import Builder
from bnconform.context import RunContext, RunSettings
from bnconform.errors import UsageError
from bnconform.findings import Finding
from bnconform.fingerprint import fingerprint
from bnconform.options import PROFILES
from bnconform.plots import plot_data
from bnconform.registry import known_codes
from bnconform.result import assemble
from bnconform.runner import run_checks
from bnconform.spec import load_spec
from bnconform.target import Target, load_target

FAIL_ON = ("error", "warning", "info")


def run_check(
    target: str | Any,
    *,
    spec: str = "pytorch",
    init: Mapping[str, object] | None = None,
    seed: int = 0,
    device: str = "cpu",
    profile: str = "default",
    ignore: Iterable[str] = (),
    fail_on: str = "error",
    timeout_s: float = 10.0,
    ranks: Sequence[int] | None = None,
    world_size: int | None = None,
    distributed: bool = False,
) -> dict[str, Any]:
    """Check `target` against `spec`; raises UsageError on bad input.

    `target` is "module:Name", "file.py:Name", or the class / factory / functools.partial
    itself. `ranks` restricts the input ranks checked to a subset of the spec's.
    `world_size` / `distributed`: also run the SyncBatchNorm checks across processes.
    """
    if world_size is not None or distributed:  # bnconform.distributed spawns/joins, then calls back here
        from bnconform.distributed import run

        return run(run_check, target, world_size=world_size, distributed=distributed, spec=spec, init=init,
                   seed=seed, device=device, profile=profile, ignore=ignore, fail_on=fail_on,
                   timeout_s=timeout_s, ranks=ranks)
    started = time.perf_counter()
    ignore = validate_codes(ignore)
    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on {fail_on!r} is not one of {', '.join(FAIL_ON)}")
    if profile not in PROFILES:  # the CLI's choices; the API would run an unknown one as a hybrid
        raise UsageError(f"--profile {profile!r} is not one of {', '.join(PROFILES)}")
    device, devices = resolve_device(device)
    if not 0 < timeout_s < float("inf"):  # join(-1) returns at once: every call would "hang"
        raise UsageError(f"--timeout {timeout_s:g} must be a positive number of seconds")
    loaded_spec = load_spec(spec)
    loaded_target = load_target(target) if isinstance(target, str) else target_from_object(target)
    builder = Builder(loaded_target, init)
    features = builder.pinned("num_features")
    settings = RunSettings(
        seed=seed, device=device, profile=profile, timeout_s=timeout_s, devices=tuple(devices),
        num_features=features if isinstance(features, int) and features >= 1 else RunSettings.num_features,
    )
    ctx = RunContext(loaded_spec, builder, settings)
    if ranks is not None:
        restrict_ranks(ctx, ranks)
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


def restrict_ranks(ctx: RunContext, ranks: Sequence[int]) -> None:
    """Check only these input ranks (a configured target that is made for fewer ranks)."""
    wanted = tuple(dict.fromkeys(int(r) for r in ranks))
    outside = [r for r in wanted if r not in ctx.spec.ranks]
    if not wanted or outside:
        raise UsageError(f"ranks {list(wanted)}: the spec {ctx.spec.name!r} defines ranks {list(ctx.spec.ranks)}")
    ctx.ranks = wanted


def target_from_object(obj: Any) -> Target:
    """A Target for a class, factory or functools.partial given as an object.

    The text names the object as an import would ("module:Qualname"), so repros can import
    it; an object defined in __main__ or inside a function is named by its source file.
    """
    import functools
    import inspect

    from bnconform.target import _check_kind, _first_doc_line

    inner = obj
    while isinstance(inner, functools.partial):
        inner = inner.func
    module = getattr(inner, "__module__", None) or "__main__"
    qualname = getattr(inner, "__qualname__", None) or type(inner).__qualname__
    name = _module_level_name(obj, module) or qualname
    file: str | None = None
    if module == "__main__" or "<locals>" in qualname:
        file = _source_file(inner)
        name = name.rpartition("<locals>.")[2]
    text = f"{file or module}:{name}"
    _check_kind(obj, text)
    return Target(text=text, obj=obj, qualname=f"{module}.{qualname}", file=file,
                  doc=_first_doc_line(inner), is_class=inspect.isclass(obj))


def _module_level_name(obj: Any, module: str) -> str | None:
    """The name `obj` is bound to in its module (a module-level partial has no __qualname__)."""
    import sys

    namespace = vars(sys.modules[module]) if module in sys.modules else {}
    return next((key for key, value in namespace.items() if value is obj), None)


def _source_file(obj: Any) -> str | None:
    import inspect

    try:
        return inspect.getsourcefile(obj)
    except (TypeError, OSError):  # built-in, or defined at an interactive prompt
        return None


SEVERITIES = ("info", "warning", "error")


@dataclass(frozen=True)
class Report:
    """The outcome of checking one target; `result` is the canonical JSON dict."""

    result: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        """True when nothing at or above the run's fail-on severity was found (waived findings pass)."""
        return self.result["summary"]["verdict"] == "pass"

    @property
    def findings(self) -> list[Finding]:
        known = {f.name for f in fields(Finding)}  # the JSON may carry more (e.g. "waiver")
        return [Finding.from_json({k: v for k, v in f.items() if k in known}) for f in self.result["findings"]]

    @property
    def failing(self) -> list[Finding]:
        """The findings that decide the verdict: not waived, at or above fail-on."""
        threshold = SEVERITIES.index(self.result["settings"]["fail_on"])
        return [f for f in self.findings if not f.waived and SEVERITIES.index(f.severity.value) >= threshold]

    @property
    def fingerprint(self) -> Mapping[str, Any]:
        return self.result["fingerprint"]

    @property
    def domain(self) -> dict[str, Any]:
        """What the class was found to accept (ranks, batch sizes, channels: result["domain"]),
        with the constructor call used and where its tensors were found."""
        return {**(self.result.get("domain") or {}), "construction": self.result["target"]["construction"],
                "tensors": dict(self.result["target"]["tensors"])}

    @property
    def target(self) -> str:
        return str(self.result["target"]["text"])

    def write(self, directory: str | Path, formats: Sequence[str] = ("json", "md", "html", "junit")) -> dict[str, Path]:
        """Write the reports the CLI writes; returns format -> path."""
        from bnconform.render import write_reports

        return write_reports(self.result, Path(directory), list(formats))

    def explain(self) -> str:
        """Every failing finding with what was expected, what was seen and the fix."""
        return "\n\n".join(describe(f) for f in self.failing)


def describe(finding: Finding) -> str:
    text = (f"{finding.code} ({finding.severity.value}): {finding.message}\n"
            f"  expected: {finding.expected}\n  observed: {finding.observed}\n  fix: {finding.hint}")
    return text + (f"\n  reproduce:\n    {finding.repro.replace(chr(10), chr(10) + '    ')}" if finding.repro else "")


def check(target: str | Any, spec: str = "pytorch", **options: Any) -> Report:
    """Check a class, factory, functools.partial or "module:Name" string; see `run_check` for options.

    `waivers` (a list of `bnconform.Waiver`) waive findings with a reason; the result lists
    each waiver as used, stale, unverified or expired.
    """
    from bnconform.waivers import apply_waivers, ignore_codes

    waivers = list(options.pop("waivers", ()))
    text = target if isinstance(target, str) else target_from_object(target).text
    options["ignore"] = [*options.get("ignore", ()), *ignore_codes(waivers, text)]
    result = run_check(target, spec=spec, **options)
    refuse_a_model(target, result, options.get("init") or {})
    return Report(apply_waivers(result, waivers))


def refuse_a_model(target: str | Any, result: Mapping[str, Any], init: Mapping[str, object]) -> None:
    """A whole model cannot be built or fed as a norm layer: say so, as the CLI does, not forward-failed."""
    if not isinstance(target, str) or not {f["code"] for f in result["findings"]} & {"construct-failed",
                                                                                    "forward-failed"}:
        return
    from bnconform.scan import describe_model

    try:
        described = describe_model(target, init)
    except Exception:  # noqa: BLE001 - only a hint: the model's own code may raise anything
        described = None
    if described:
        raise UsageError(f"{target} is a model, not a normalization layer: it contains {described}; "
                         f"check its norm layers with `bnconform scan {target}`")


def assert_conforms(target: str | Any, spec: str = "pytorch", **options: Any) -> Report:
    """Raise AssertionError listing each failing finding with its fix; return the Report otherwise."""
    report = check(target, spec, **options)
    if not report.ok:
        failing = report.failing
        head = f"{report.target} does not conform to spec {spec!r}: {len(failing)} finding(s)"
        raise AssertionError(f"{head}\n\n{report.explain()}" if failing else head)
    return report
