"""What a probe measures is shared through RunContext.probe's cache by every check that asks for
it: the dataclasses probes return (and discovery's) are frozen, so no check can change another
check's evidence. The few mutable ones are working objects, each listed with why."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import bnconform.probes

MUTABLE = {
    "bnconform.probes.common.Prepared": "a module and its discovery being driven, never cached",
    "bnconform.probes.dtypes.Outcome": "filled in while one dtype case runs, then only read",
    "bnconform.probes.dtypes.Seen": "collects what one dtype case observed while it runs",
    "bnconform.probes.layouts.LayoutResult": "filled in while one layout variant runs, then only read",
}


def dataclasses_of(module_name: str) -> dict[str, type]:
    module = importlib.import_module(module_name)
    return {f"{module_name}.{name}": obj for name, obj in vars(module).items()
            if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and obj.__module__ == module_name}


def measured() -> dict[str, type]:
    found = dataclasses_of("bnconform.discover")
    for info in pkgutil.iter_modules(bnconform.probes.__path__):
        found |= dataclasses_of(f"bnconform.probes.{info.name}")
    return found


def test_every_measurement_is_frozen_except_the_listed_working_objects() -> None:
    classes = measured()
    assert len(classes) > 30  # every probe module was found
    mutable = {name for name, cls in classes.items() if not cls.__dataclass_params__.frozen}
    assert mutable == set(MUTABLE)
