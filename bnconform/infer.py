"""`bnconform infer TARGET [-o spec.toml]`: the implementation's observed behaviour as a spec file.

The fingerprint (what every probe observed, in the spec's vocabulary) overrides the closest
shipped spec; whatever no probe can observe (momentum=None, tolerances, the variance
algorithm) comes from that spec. The file is validated by loading it, then the target is
checked against it: findings that remain are bugs no spec key expresses (a wrong buffer
shape, say) and are listed, never hidden. Importing this loads no torch.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bnconform.errors import UsageError

LAYOUT_CODES = ("reduction-axes", "input-rank-unsupported")
# fingerprint key -> (Spec field, how an observed value becomes the field's value; None = unusable)
Parse = Callable[[str], Any]


def _choice(*allowed: str) -> Parse:
    return lambda text: text if text in allowed else None


def _yes_no(text: str) -> bool | None:
    return {"yes": True, "no": False}.get(text)


def _positive(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value > 0 else None


OBSERVED: dict[str, tuple[str, Parse]] = {
    "norm-variance-estimator": ("norm_variance", _choice("biased", "unbiased")),
    "eps-placement": ("eps_placement", _choice("inside-sqrt", "outside-sqrt")),
    "eps-default": ("eps", _positive),
    "momentum-inverted": ("momentum_convention", _choice("new-weight", "old-weight")),
    "running-var-estimator": ("running_var_estimator", _choice("biased", "unbiased")),
    "eval-uses-batch-stats": ("eval_uses", _choice("running", "batch")),
    "eval-updates-running-stats": ("eval_updates_running_stats", _yes_no),
    "num-batches-tracked": ("num_batches_tracked", _yes_no),
    "batch-size-one": ("batch_of_one", _choice("error", "allowed")),
    "mode-follows-grad": ("update_under_no_grad", lambda t: {"module.training": True}.get(t)),
}


def add_parser(commands: Any) -> None:
    infer = commands.add_parser("infer", help="write a spec file describing what an implementation does")
    infer.add_argument("target", help="module:Name or file.py:Name")
    infer.add_argument("-o", "--output", default=None, metavar="SPEC.toml", help="file to write (default: stdout)")
    infer.add_argument("--init", action="append", default=[], metavar="KEY=VALUE", help="constructor argument")
    infer.add_argument("--seed", type=int, default=0, help="seed of every probe input")
    infer.add_argument("--name", default=None, help="the spec's name (default: inferred-<class name>)")
    infer.add_argument("--baseline", default=None, metavar="BNCONFORM.toml",
                       help="also write a bnconform.toml that checks the target against the spec (-o) with a "
                            "waiver, reason and date for each bug no spec key expresses: accepted today, "
                            "reported as stale once fixed")


def observe(target: str | Any, init: Mapping[str, object], seed: int) -> dict[str, Any]:
    """A result whose layout matched the spec checked against, channels first or channels last.

    Both are tried: at rank 2 the layouts coincide, so a channels-last class passes the
    channels-first reduction check on (N, C) alone. The layout under which the class takes more
    ranks is the one it was written for (ties: channels first, the layout of most code).
    """
    from bnconform.api import run_check
    from bnconform.spec import load_builtin_specs

    tried = {name: run_check(target, spec=name, init=init, seed=seed)
             for name in ("pytorch", "keras")}  # the two layouts every shipped spec uses (axis 1 / axis -1)
    matched = [result for result in tried.values()
               if {c["id"]: c["status"] for c in result["checks"]}.get("reduction-axes") == "passed"]
    if matched:
        return max(matched, key=lambda result: len((result.get("domain") or {}).get("ranks") or ()))
    known = ", ".join(s.name for s in load_builtin_specs())
    raise UsageError(f"{tried['pytorch']['target']['text']}: its statistics reduce over neither the channels-first "
                     f"nor the channels-last axes of any shipped spec ({known}); nothing to infer a layout from")


def inferred_values(result: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(template spec name, Spec field -> value observed)."""
    rows = {row["key"]: row["observed"] for row in result["fingerprint"]["rows"]}
    values: dict[str, Any] = {}
    for key, (attr, parse) in OBSERVED.items():
        parsed = parse(rows[key]) if key in rows else None
        if parsed is not None:
            values[attr] = parsed
    if match := re.fullmatch(r"mean (\S+), var (\S+)", rows.get("running-stats-init", "")):
        values["running_mean_init"], values["running_var_init"] = float(match.group(1)), float(match.group(2))
    weight = _positive(rows.get("momentum-default", ""))
    if weight is not None and weight <= 1:
        values["momentum_weight"] = weight
    ranks = re.findall(r"\d+", rows.get("input-rank-unsupported", ""))
    if ranks:
        values["ranks"] = tuple(int(r) for r in ranks)
    failed = {f["code"] for f in result["findings"]}
    if "running-stats-missing" in failed:
        values.update(track_running_stats=False, eval_uses="batch")
    if failed & {"state-dict-keys", "state-dict-load"}:
        values["state_dict_interop"] = None
    template = result["fingerprint"]["closest_spec"].get("name") or result["spec"]["name"]
    return template, values


def layout_spec(result: Mapping[str, Any]) -> str:
    """The spec whose channel axis the statistics were observed to reduce around (see observe)."""
    return str(result["spec"]["name"])


def spec_toml(template: str, values: Mapping[str, Any], name: str, source: str, layout: str | None = None) -> str:
    """A complete, standalone spec file: the template spec with the observed values set.

    The layout (channel axis, reduction axes) comes from `layout`, the spec the statistics were
    observed to match: the closest spec may follow the other layout (a channels-first class
    whose other conventions are Flax's), and its axes would describe a different class.
    """
    from bnconform.spec import load_spec
    from bnconform.spec_file import _SCHEMA

    base = load_spec(template)
    axes = load_spec(layout) if layout else base
    fields = {attr: getattr(base, attr) for table in _SCHEMA.values() for attr, *_ in table.values()
              if attr and "." not in attr}
    for attr, value in values.items():
        if attr in fields:
            fields[attr] = value
    if "momentum_weight" in values:  # the observed new-batch weight, in the inferred convention
        w = values["momentum_weight"]
        fields["momentum_default"] = round(w if fields["momentum_convention"] == "new-weight" else 1 - w, 6)
    fields["channel_axis"], fields["ranks"] = axes.channel_axis, axes.ranks
    if "ranks" in values:
        fields["ranks"] = tuple(r for r in axes.ranks if r in values["ranks"]) or axes.ranks
    fields["reduction_axes"] = {r: axes.reduction_axes[r] for r in fields["ranks"]}
    if not fields["track_running_stats"]:
        fields["eval_uses"] = "batch"
    fields.update(name=name, description=f"inferred by bnconform infer from {source} (template: {template})",
                  source=f"observed behaviour of {source}")
    lines = [f"# Inferred by `bnconform infer {source}`: observed behaviour over the {template} spec"
             f"{f' (layout of the {layout} spec)' if layout and layout != template else ''}.", ""]
    for table, keys in _SCHEMA.items():
        entries = [(key, _tolerance(base, attr) if "." in attr else fields.get(attr))
                   for key, (attr, *_) in keys.items() if attr]
        entries = [(k, v) for k, v in entries if v is not None]
        if entries:
            lines += [f"[{table}]", *(f"{k} = {toml_value(v)}" for k, v in entries), ""]
    return "\n".join(lines)


def _tolerance(base: Any, attr: str) -> float:
    dtype, part = attr.split(".")
    return float(getattr(base.tolerances[dtype], part))


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(list(v))}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


def infer(target: str | Any, init: Mapping[str, object] | None = None, seed: int = 0,
          name: str | None = None) -> tuple[str, dict[str, Any]]:
    """(spec TOML text, the observation it came from)."""
    result = observe(target, init or {}, seed)
    template, values = inferred_values(result)
    leaf = str(result["target"]["text"]).rpartition(":")[2].rpartition(".")[2]
    spec_name = name or f"inferred-{re.sub(r'[^A-Za-z0-9_-]+', '-', leaf).strip('-').lower() or 'spec'}"
    return spec_toml(template, values, spec_name, str(result["target"]["text"]), layout_spec(result)), result


def baseline_toml(target: str, spec_path: Path, config_path: Path, init: Mapping[str, object],
                  remaining: list[Mapping[str, Any]], today: str) -> str:
    """A standalone bnconform.toml: the target, its inferred spec, one waiver per remaining code."""
    spec_ref = os.path.relpath(spec_path.resolve(), config_path.resolve().parent)
    target = _relative_to(target, config_path)
    entry = {"target": target, "spec": spec_ref, **({"init": dict(init)} if init else {})}
    lines = [f"# Written by `bnconform infer {target} --baseline` on {today}: the behaviour observed that day,",
             "# accepted. Each waiver is a bug no spec key expresses; fix it and bnconform reports the",
             "# waiver as stale. Check with: bnconform check --config " + config_path.name, "",
             "targets = [{ " + ", ".join(f"{k} = {_inline(v)}" for k, v in entry.items()) + " }]", ""]
    titles: dict[str, str] = {}
    for finding in remaining:
        titles.setdefault(str(finding["code"]), _headline(str(finding["message"])))
    for code, title in sorted(titles.items()):
        lines += ["[[waivers]]", f"code = {toml_value(code)}",
                  f"reason = {toml_value(f'baseline of {today}: {title}')}",
                  f"target = {toml_value(target)}", ""]
    return "\n".join(lines)


def _relative_to(target: str, config_path: Path) -> str:
    """A file target as the config file resolves it (relative to the file's folder)."""
    left, _, name = target.rpartition(":")
    if not left.endswith(".py"):
        return target
    return f"{os.path.relpath(Path(left).resolve(), config_path.resolve().parent)}:{name}"


def _headline(message: str) -> str:
    """The message up to its details ("Wrong values in low precision: cpu float16 ..." -> the part before)."""
    head = message.splitlines()[0].split(": ", 1)[0] if message else ""
    return head if len(head) <= 100 else head[:99].rstrip() + "…"


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_inline(v)}" for k, v in value.items()) + " }"
    return toml_value(value)


def run(args: argparse.Namespace) -> int:
    from bnconform.api import run_check
    from bnconform.construct import parse_init
    from bnconform.spec import load_spec

    init = parse_init(args.init)
    if args.baseline:
        _check_baseline_args(args, init)
    text, _ = infer(args.target, init, args.seed, args.name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.output) if args.output else Path(tmp) / "inferred.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        load_spec(str(path))  # what we write must load; an error here is our bug (exit 3)
        check = run_check(args.target, spec=str(path), init=init, seed=args.seed)
    if not args.output:
        sys.stdout.write(text)
    else:
        print(f"wrote spec {path}", file=sys.stderr)
    remaining = [f for f in check["findings"] if not f["waived"]]
    if remaining:
        codes = ", ".join(sorted({f["code"] for f in remaining}))
        print(f"bnconform: note: against this spec {len(remaining)} finding(s) remain that no spec key "
              f"expresses (bugs, not conventions): {codes}", file=sys.stderr)
    else:
        print("bnconform: checked against the inferred spec: clean", file=sys.stderr)
    if args.baseline:
        write_baseline(args, init, remaining)
    return 0


def _check_baseline_args(args: argparse.Namespace, init: Mapping[str, object]) -> None:
    if not args.output:
        raise UsageError("--baseline needs -o SPEC.toml: the baseline refers to the spec file")
    for key, value in init.items():
        if not _toml_expressible(value):
            raise UsageError(f"--baseline: --init {key}={value!r} cannot be written to TOML; "
                             "configure that target by hand")


def _toml_expressible(value: object) -> bool:
    if isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_toml_expressible(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _toml_expressible(v) for k, v in value.items())
    return False


def write_baseline(args: argparse.Namespace, init: Mapping[str, object], remaining: list[Mapping[str, Any]]) -> None:
    import datetime as dt

    from bnconform.config import load_config

    config_path = Path(args.baseline)
    config_path.parent.mkdir(parents=True, exist_ok=True)
    text = baseline_toml(args.target, Path(args.output), config_path, init, remaining, dt.date.today().isoformat())
    config_path.write_text(text, encoding="utf-8")
    load_config(config_path, search=False)  # what we write must load; an error here is our bug (exit 3)
    print(f"wrote baseline {config_path} ({len({f['code'] for f in remaining})} waiver(s)); "
          f"check with: bnconform check --config {config_path}", file=sys.stderr)
