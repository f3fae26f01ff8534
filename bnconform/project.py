"""`bnconform check` over a project: targets from the command line or the configuration,
options resolved CLI > configuration file > default, one report folder per target and a
combined index when there are several.

Each target is checked by one `api.run_check` call (the supervised worker replaces exactly
that call); this module only plans the runs, applies waivers and writes the index.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bnconform.config import Config, TargetEntry, load_config
from bnconform.errors import UsageError
from bnconform.waivers import Waiver, apply_waivers, ignore_codes, unmatched, warnings_for

# Option dest -> default when neither the command line nor the configuration sets it.
DEFAULTS: dict[str, Any] = {
    "spec": "pytorch", "formats": ["json", "md", "html", "junit"], "output": "reports", "fail_on": "error",
    "seed": 0, "device": "cpu", "profile": "default", "timeout": 10.0, "init": [], "ignore": [],
}
ANNOTATE = ("github", "none")

Present = Callable[[argparse.Namespace, Mapping[str, Any], Path], int]


@dataclass(frozen=True)
class Job:
    """One target to check, with everything `run_check` needs."""

    target: str
    options: dict[str, Any]
    waivers: tuple[Waiver, ...] = ()
    label: str = ""  # how the index names it (scan: the class and its arguments)
    obj: Any = None  # the class itself when there is one (scan), else `target` is imported
    extra: dict[str, Any] = field(default_factory=dict)  # copied into the index entry


def add_arguments(check: argparse.ArgumentParser) -> None:
    """Options `check` (and `scan`) add to the shared ones; call after the shared options exist."""
    check.add_argument("--config", default=None, metavar="PATH",
                       help="pyproject.toml or bnconform.toml to read (default: the nearest one with [tool.bnconform])")
    check.add_argument("--no-config", action="store_true", help="ignore configuration files")
    check.add_argument("--annotate", choices=ANNOTATE, default=None,
                       help="also print CI annotations (default: github when GITHUB_ACTIONS=true)")
    # A flag left out reads None, so the configuration's value shows through (CLI > file > default).
    check.set_defaults(**{dest: None for dest in DEFAULTS})


def setting(args: argparse.Namespace, config: Config, dest: str) -> Any:
    value = getattr(args, dest, None)
    if value is not None and value != []:
        return value
    return config.get(dest, DEFAULTS[dest])


def configuration(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None), search=not getattr(args, "no_config", False))


def plan(args: argparse.Namespace, config: Config) -> list[Job]:
    """The runs `check` makes: the targets named on the command line, else every configured one."""
    from bnconform.init_args import parse_init  # torch-free: this process never imports torch

    named = [t for t in (args.target or []) if t.strip()]
    entries = {e.target: e for e in config.targets}
    if named:
        chosen = [entries.get(t, TargetEntry(target=t)) for t in named]
    elif config.targets:
        chosen = list(config.targets)
    else:
        where = f" and {config.path} lists no targets" if config.path else " and no [tool.bnconform] targets were found"
        raise UsageError(f"no target given{where}; e.g. `bnconform check torch.nn:BatchNorm2d`")
    cli_init = parse_init(args.init or [])
    waivers = (*config.waivers, *(Waiver(code, "command line", source="--ignore") for code in args.ignore or []))
    return [job_for(args, config, entry, cli_init, waivers) for entry in chosen]


def job_for(args: argparse.Namespace, config: Config, entry: TargetEntry, cli_init: Mapping[str, object],
            waivers: Sequence[Waiver]) -> Job:
    spec = args.spec or entry.spec or config.get("spec", DEFAULTS["spec"])
    options = {
        "spec": spec, "init": {**entry.init, **cli_init}, "seed": setting(args, config, "seed"),
        "device": setting(args, config, "device"), "profile": setting(args, config, "profile"),
        "fail_on": setting(args, config, "fail_on"), "timeout_s": setting(args, config, "timeout"),
        "ignore": ignore_codes(waivers, entry.target),
    }
    ranks = getattr(args, "ranks", None) or entry.ranks  # --ranks overrides the configured ones
    if ranks:
        options["ranks"] = list(ranks)
    if getattr(args, "world_size", None) is not None or getattr(args, "distributed", False):
        options.update(world_size=args.world_size, distributed=args.distributed)  # bnconform.distributed
    return Job(entry.target, options, tuple(waivers))


def safe_name(text: str) -> str:
    """A folder name for a target: `pkg.mod:BN` -> `pkg.mod_BN`; paths keep only the file name."""
    left, _, name = text.rpartition(":")
    left = Path(left).name if left.endswith(".py") else left
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{left}:{name}" if left else name).strip("._") or "target"


def folders(jobs: Sequence[Job], output: Path) -> list[Path]:
    """Straight into `output` for one job (as before); `output/<target>/` each when there are several."""
    if len(jobs) == 1:
        return [output]
    names: list[str] = []
    for job in jobs:
        name = safe_name(job.label or job.target)
        names.append(name if name not in names else f"{name}-{len(names)}")
    return [output / name for name in names]


def check_command(args: argparse.Namespace, present: Present) -> int:
    """`bnconform check [TARGET ...]`: plan, run each target, present each result, write the index."""
    config = configuration(args)
    return run_jobs(args, config, plan(args, config), present)


def check_one(job: Job, max_time_s: float | None = None) -> dict[str, Any]:
    """The one call that checks one target (CLI and pytest plugin), waivers explained."""
    from bnconform.supervise import run_supervised as run_check  # user code runs in a worker process

    return apply_waivers(run_check(job.obj or job.target, max_time_s=max_time_s, **job.options), job.waivers)


def run_jobs(args: argparse.Namespace, config: Config, jobs: Sequence[Job], present: Present) -> int:
    from bnconform.render import validate_destinations

    output = Path(setting(args, config, "output"))
    if str(output) != "-":  # relative to where the user started; refused now if unwritable (issue 9)
        output = output.absolute()
        validate_destinations(output)
    args.formats, args.output = setting(args, config, "formats"), str(output)
    if "html" in args.formats and str(output) != "-":
        from bnconform.render.plots import prefetch_matplotlib

        prefetch_matplotlib()  # imported while the worker runs the checks, not after
    entries, codes = [], []
    for job, folder in zip(jobs, folders(jobs, output), strict=True):
        try:
            result = check_one(job, getattr(args, "max_time", None))
        except UsageError as error:
            error = model_error(job) or error
            if len(jobs) == 1:
                raise error from None
            print(f"bnconform: error: {job.target}: {error}", file=sys.stderr)
            entries.append(error_entry(job, error))
            codes.append(UsageError.exit_code)
            continue
        if config.path is not None:
            result["settings"]["config"] = str(config.path)
        model_hint(job, result, single=len(jobs) == 1)
        codes.append(present(args, result, folder))
        annotate(args, result)
        for line in warnings_for(result):
            print(f"bnconform: warning: {line}", file=sys.stderr)
        entries.append(index_entry(job, result, folder, output))
    for waiver in unmatched(config.waivers, [j.target for j in jobs]):
        print(f"bnconform: warning: {waiver.source}: waiver {waiver.code} matches no checked target "
              f"({waiver.target!r})", file=sys.stderr)
    if len(jobs) > 1:
        write_index(entries, output, unmatched(config.waivers, [j.target for j in jobs]))
    return max(codes, default=0)


def model_error(job: Job) -> UsageError | None:
    """A whole model given to `check` cannot be built or fed as a norm layer: say so, suggest `scan`."""
    if job.obj is not None:
        return None
    from bnconform.supervise import model_note

    described = model_note(job.target)  # found by the worker: this process never imports the target
    if not described:
        return None
    return UsageError(f"{job.target} is a model, not a normalization layer: it contains {described}; "
                      f"check its norm layers with `bnconform scan {job.target}`")


def model_hint(job: Job, result: Mapping[str, Any], single: bool) -> None:
    """A model whose forward failed on the probe shapes: the same message as model_error."""
    if not {f["code"] for f in result["findings"]} & {"construct-failed", "forward-failed"}:
        return
    error = model_error(job)
    if error is not None:
        if single:
            raise error
        print(f"bnconform: error: {error}", file=sys.stderr)


def annotate(args: argparse.Namespace, result: Mapping[str, Any]) -> None:
    import os

    mode = getattr(args, "annotate", None) or ("github" if os.environ.get("GITHUB_ACTIONS") == "true" else "none")
    if mode == "github":
        from bnconform.render.github import render

        text = render(result)
        if text:
            print(text, end="")


def index_entry(job: Job, result: Mapping[str, Any], folder: Path, output: Path) -> dict[str, Any]:
    summary = result["summary"]
    return {
        "target": job.target, "label": job.label or job.target, "spec": result["spec"]["name"],
        "verdict": summary["verdict"], "counts": summary["counts"],
        "folder": str(folder.relative_to(output)) if folder != output else ".",
        "waivers": result["settings"].get("waivers", []), **job.extra,
    }


def error_entry(job: Job, error: Exception) -> dict[str, Any]:
    """A target that could not be checked: named like the others, no folder (no report was written)."""
    return {"target": job.target, "label": job.label or job.target, "verdict": "error", "error": str(error),
            **job.extra}


def write_index(entries: list[dict[str, Any]], output: Path, stale: Sequence[Waiver], echo: bool = True) -> None:
    """index.json and index.md next to the per-target folders, and a summary table on stdout."""
    from bnconform.render.common import one_line

    output.mkdir(parents=True, exist_ok=True)
    verdict = "pass" if all(e["verdict"] == "pass" for e in entries) else "fail"
    data = {"schema": "bnconform.index/1", "verdict": verdict, "targets": entries,
            "unmatched_waivers": [w.to_json() for w in stale]}
    (output / "index.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    (output / "index.md").write_text(index_markdown(entries, verdict), encoding="utf-8")
    if not echo:
        return
    print(f"\nbnconform {verdict.upper()}: {len(entries)} targets")
    for e in entries:
        print(f"  {e['verdict']:5}  {one_line(e['label'], 70):70}  {counts(e)}")
    print(f"wrote index {output / 'index.md'}\nwrote index {output / 'index.json'}")


def index_markdown(entries: Sequence[Mapping[str, Any]], verdict: str) -> str:
    """One row per target; scan's entries add the module paths that use each checked layer kind.
    Every cell is escaped as in the Markdown report; a target without a report has no link."""
    from bnconform.render.markdown import cell

    with_modules = any("modules" in e for e in entries)
    headers = ["target", *(["modules"] if with_modules else []), "verdict", "findings", "report"]
    rows = []
    for e in entries:
        modules = [", ".join(cell(m) for m in e.get("modules") or [])] if with_modules else []
        rows.append([cell(e["label"]), *modules, cell(e["verdict"]), cell(counts(e)), report_link(e)])
    table = [headers, ["---"] * len(headers), *rows]
    return f"# bnconform: {verdict}\n\n" + "\n".join(f"| {' | '.join(row)} |" for row in table) + "\n"


def report_link(entry: Mapping[str, Any]) -> str:
    from bnconform.render.markdown import cell

    folder = entry.get("folder")
    if not folder:
        return ""  # nothing was written for it (it could not be loaded)
    return f"[{cell(folder)}]({quote(str(folder))}/bnconform-report.md)"


def counts(entry: Mapping[str, Any]) -> str:
    if "counts" not in entry:
        return str(entry.get("error", ""))
    c = entry["counts"]
    return f"{plural(c['error'], 'error')}, {plural(c['warning'], 'warning')}, {c['info']} info, {c['waived']} waived"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
