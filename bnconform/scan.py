"""`bnconform scan module:factory`: build a model, find its normalization layers, check each kind once.

A layer is normalization-like by type (torch's _BatchNorm, SyncBatchNorm) or by behaviour
(it holds its own running mean and variance, as every BatchNorm variant written by hand
does, FrozenBatchNorm included). Layers are grouped by class and by the constructor
arguments that differ from the defaults (momentum=0.01 is checked apart from 0.1); each
group is checked once, and its report lists the module paths that use it. Importing this
loads no torch.
"""

from __future__ import annotations

import argparse
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bnconform.errors import UsageError
from bnconform.options import CHECK_OPTIONS

STAT_NAMES = (("running_mean", "moving_mean", "mean"), ("running_var", "moving_var", "moving_variance", "var"))
NAME_HINT = re.compile(r"batch_?norm|frozen_?bn|^bn\d?d?$|^(sync_?)?bn", re.IGNORECASE)
SIMPLE = (bool, int, float, str, type(None))


@dataclass
class Group:
    """One class + constructor arguments, and the module paths of the layers built that way."""

    cls: type
    init: dict[str, Any]
    paths: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.init.items())
        return f"{self.cls.__module__}.{self.cls.__qualname__}({args})"


def add_parser(commands: Any) -> Any:
    from bnconform import project

    scan = commands.add_parser("scan", help="check every normalization layer a model uses")
    scan.add_argument("target", nargs="?", help="module:factory or file.py:factory that builds the model "
                      "(--init KEY=VALUE are the factory's arguments)")
    for option in CHECK_OPTIONS:
        scan.add_argument(*option.flags, help=option.help, **option.kwargs)
    project.add_arguments(scan)
    return scan


def is_norm_layer(module: Any) -> bool:
    """BatchNorm by type, or by behaviour: it keeps its own running mean and variance."""
    import torch

    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):  # noqa: SLF001 - torch's own base class
        return True
    if isinstance(module, torch.nn.modules.instancenorm._InstanceNorm):  # noqa: SLF001 - not a BatchNorm
        return False
    own = {**dict(module.named_buffers(recurse=False)),
           **{k: v for k, v in vars(module).items() if isinstance(v, torch.Tensor)}}
    has_stats = all(any(isinstance(own.get(n), torch.Tensor) and own[n].dim() == 1 for n in names)
                    for names in STAT_NAMES)
    return has_stats or (bool(NAME_HINT.search(type(module).__name__)) and not list(module.children()))


def norm_layers(model: Any) -> list[tuple[str, Any]]:
    """(path, module) of each normalization layer; a layer inside another one is part of it."""
    found: list[tuple[str, Any]] = []
    for path, module in model.named_modules():
        if any(path.startswith(outer + ".") or outer == "" for outer, _ in found):
            continue
        if is_norm_layer(module):
            found.append((path, module))
    return found


def constructor_args(module: Any) -> dict[str, Any]:
    """Arguments the layer was evidently built with that differ from its constructor's defaults.

    Read back from same-named attributes (torch and most hand-written layers store them);
    the channel count is left out: the checks choose the probe width.
    """
    from bnconform.construct import ALIASES

    try:
        params = inspect.signature(type(module)).parameters
    except (TypeError, ValueError):
        return {}
    args = {}
    for name, param in params.items():
        if name.lower() in ALIASES["num_features"] or name in ("device", "dtype") or not hasattr(module, name):
            continue
        value = getattr(module, name)
        if isinstance(value, SIMPLE) and (param.default is param.empty or value != param.default):
            args[name] = value
    return args


def group_layers(model: Any) -> list[Group]:
    groups: dict[tuple[Any, ...], Group] = {}
    for path, module in norm_layers(model):
        init = constructor_args(module)
        key = (type(module), tuple(sorted((k, repr(v)) for k, v in init.items())))
        groups.setdefault(key, Group(type(module), init)).paths.append(path or "(the model itself)")
    return list(groups.values())


def build_model(text: str, init: Mapping[str, object]) -> Any:
    import torch

    from bnconform.target import _describe_exception, load_target

    target = load_target(text)
    try:
        model = target.obj(**init)
    except Exception as exc:  # noqa: BLE001 - user code: one line, never a traceback
        raise UsageError(f"building the model {text} raised {_describe_exception(exc)}; "
                         "pass its arguments with --init KEY=VALUE") from None
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"{text} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def describe_model(text: str, init: Mapping[str, object]) -> str | None:
    """"2 normalization layers (BatchNorm2d at bn1, layer1.bn)" when `text` builds a model with
    norm layers inside; None when it cannot be built as given or is a norm layer itself."""
    try:
        model = build_model(text, init)
    except UsageError:
        return None
    layers = [(p, m) for p, m in norm_layers(model) if p]
    if not layers or is_norm_layer(model) or thin_wrapper(model, layers):
        return None
    shown = ", ".join(f"{type(m).__name__} at {p}" for p, m in layers[:4]) + (", ..." if len(layers) > 4 else "")
    return f"{len(layers)} normalization layer{'s' if len(layers) != 1 else ''} ({shown})"


def thin_wrapper(model: Any, layers: list[tuple[str, Any]]) -> bool:
    """One norm layer and no other layer with parameters (a channels-last or renaming wrapper):
    a norm layer in its own right, whose failures are findings, not a sign of a model."""
    inside = {id(sub) for _, layer in layers for sub in layer.modules()}
    others = [sub for path, sub in model.named_modules() if path and id(sub) not in inside
              and any(True for _ in sub.parameters(recurse=False))]
    return len(layers) == 1 and not others


def class_target(cls: type) -> tuple[str, type | None]:
    """("module:Class" or "file.py:Class", None) when the class can be imported again (the
    checks may run in a worker process), else (its name, the class itself)."""
    import sys

    from bnconform.api import target_from_object

    module = sys.modules.get(cls.__module__)
    source = getattr(module, "__file__", None)
    local = "<locals>" in cls.__qualname__
    if cls.__module__.startswith("_bnconform_target_") and source and not local:
        return f"{source}:{cls.__qualname__}", None  # loaded from a file path: load it the same way
    if module is not None and cls.__module__ != "__main__" and not local:
        return f"{cls.__module__}:{cls.__qualname__}", None
    return target_from_object(cls).text, cls


def run(args: argparse.Namespace, present: Any) -> int:
    from bnconform import project
    from bnconform.construct import parse_init

    if not args.target:
        raise UsageError("scan needs a model: module:factory or file.py:factory, e.g. torchvision.models:resnet18")
    config = project.configuration(args)
    model = build_model(args.target, parse_init(args.init or []))
    groups = group_layers(model)
    if not groups:
        raise UsageError(f"{args.target} builds a {type(model).__name__} with no normalization layer "
                         "(none by type, none keeping running statistics)")
    layers, kinds = sum(len(g.paths) for g in groups), len(groups)
    print(f"{args.target}: {layers} normalization layer{'s' * (layers != 1)} of {kinds} "
          f"kind{'s' * (kinds != 1)}")
    for group in groups:
        print(f"  {group.label}: {len(group.paths)} x {', '.join(group.paths)}")
    args.init = []  # the factory's arguments are not the layers'
    entries = {e.target: e for e in config.targets}
    jobs = []
    for group in groups:
        text, obj = class_target(group.cls)
        entry = entries.get(text, project.TargetEntry(target=text))
        entry = project.TargetEntry(text, entry.spec, {**group.init, **entry.init}, entry.ranks)
        job = project.job_for(args, config, entry, {}, config.waivers)
        jobs.append(project.Job(text, job.options, job.waivers, label=group.label, obj=obj,
                                extra={"modules": group.paths}))
    return project.run_jobs(args, config, jobs, present)
