"""pytest plugin: `pytest --bnconform mymod:BatchNorm` turns every check into a test item.

Options are the CLI's own (bnconform.options), prefixed with `--bnconform-`. Importing this
module loads no torch: pytest imports every installed plugin, and most runs never use it.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from bnconform.options import CHECK_OPTIONS

PLUGIN_OPTIONS = ("--spec", "--init", "--device", "--ignore", "--fail-on", "--seed", "--profile", "--timeout")
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bnconform", "BatchNorm conformance (bnconform)")
    group.addoption("--bnconform", action="append", default=[], metavar="TARGET",
                    help="check a BatchNorm class (module:Name or file.py:Name); repeatable")
    for option in CHECK_OPTIONS:
        if option.flags[0] in PLUGIN_OPTIONS:
            kwargs = dict(option.kwargs)
            kwargs["dest"] = "bnconform_" + option.flags[0].lstrip("-").replace("-", "_")
            group.addoption("--bnconform-" + option.flags[0].lstrip("-"), help=option.help, **kwargs)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    for target in config.getoption("bnconform"):
        for code in _codes():
            items.append(CheckItem.from_parent(session, name=f"bnconform[{target}]::{code}", target=target, code=code))


def _codes() -> list[str]:
    from bnconform.registry import known_codes

    return known_codes()


class BnconformWarning(UserWarning):
    """A finding below the --bnconform-fail-on severity."""


class CheckFailed(Exception):
    """A bnconform finding, shown as the test's failure text."""


class CheckItem(pytest.Item):
    """One registered check of one target; the target is checked once per session."""

    def __init__(self, *, target: str, code: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target, self.code = target, code

    def runtest(self) -> None:
        result = _result(self.config, self.target)
        check = next(c for c in result["checks"] if c["id"] == self.code)
        if check["status"] in ("skipped", "blocked"):
            pytest.skip(check["reason"] or check["status"])
        if check["status"] == "errored":
            raise CheckFailed(check["reason"])
        threshold = SEVERITY_RANK[self.config.getoption("bnconform_fail_on")]
        active = [f for f in check["findings"] if not f["waived"]]
        failing = [f for f in active if SEVERITY_RANK[f["severity"]] >= threshold]
        if failing:
            raise CheckFailed("\n\n".join(_describe(f) for f in failing))
        for finding in active:  # below --bnconform-fail-on: visible, but the test passes
            warnings.warn(BnconformWarning(f"{finding['code']}: {finding['message']}"), stacklevel=1)
        if check["findings"] and not active:
            pytest.skip(f"waived: {self.code}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[str, int | None, str]:
        return self.target, None, f"bnconform {self.code}"


def _describe(finding: dict[str, Any]) -> str:
    return (f"{finding['code']} ({finding['severity']}): {finding['message']}\n"
            f"expected: {finding['expected']}\nobserved: {finding['observed']}\n"
            f"why: {finding['why']}\nfix: {finding['hint']}\n\nReproduce with:\n{finding['repro']}")


def _result(config: pytest.Config, target: str) -> dict[str, Any]:
    cache = config.stash.setdefault(_RESULTS, {})
    if target not in cache:
        from bnconform.api import run_check
        from bnconform.construct import parse_init

        def opt(name: str) -> Any:
            return config.getoption("bnconform_" + name)

        cache[target] = run_check(
            target, spec=opt("spec"), init=parse_init(opt("init")), seed=opt("seed"), device=opt("device"),
            profile=opt("profile"), ignore=opt("ignore"), timeout_s=opt("timeout"),
        )
    return cache[target]


_RESULTS = pytest.StashKey[dict]()
