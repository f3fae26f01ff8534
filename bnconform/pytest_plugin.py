"""pytest plugin: the targets of `[tool.bnconform]` (or `--bnconform TARGET`) as real test items.

The tree is the one pytest builds for any file: the configuration file (pyproject.toml or
bnconform.toml) -> one collector per target -> one item per check, so a node id such as
`pyproject.toml::tinynet.layers:BatchNorm2d::momentum-inverted` can be passed back to pytest
to re-run one check. The file joins the collection only when the whole suite runs (no test
paths or ids on the command line) or when it is named; running one unrelated test never runs
a check. Options: `--bnconform-*` > `[tool.bnconform]` > `bnconform_*` ini keys > defaults.
Importing this module loads no torch: pytest imports every installed plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bnconform import plugin_results as results
from bnconform.options import CHECK_OPTIONS

PLUGIN_OPTIONS = ("--spec", "--init", "--device", "--ignore", "--fail-on", "--seed", "--profile", "--timeout")
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
CONFIG_NAMES = ("pyproject.toml", "bnconform.toml")
INI_KEYS = {"spec": "built-in spec or .toml path", "fail_on": "lowest severity that fails an item",
            "output": "directory for the reports"}
_FILE = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bnconform", "BatchNorm conformance (bnconform)")
    group.addoption("--bnconform", action="append", default=[], metavar="TARGET",
                    help="check a BatchNorm class (module:Name or file.py:Name) besides the configured ones")
    for option in CHECK_OPTIONS:
        if option.flags[0] in PLUGIN_OPTIONS:
            kwargs = dict(option.kwargs) | {"default": None}  # None = not given: the file or ini decides
            kwargs["dest"] = "bnconform_" + option.flags[0].lstrip("-").replace("-", "_")
            group.addoption("--bnconform-" + option.flags[0].lstrip("-"), help=option.help, **kwargs)
    group.addoption("--bnconform-output", default=None, metavar="DIR",
                    help="write the reports `bnconform check` writes (one folder per target, index.md)")
    parser.addini("bnconform_targets", "targets to check (one per line)", type="linelist", default=[])
    for key, text in INI_KEYS.items():
        parser.addini(f"bnconform_{key}", text, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): keep one bnconform target's checks on one xdist worker")
    path = _config_file(config)
    if path is None:
        return
    config.stash[_FILE] = path
    # Whole-suite runs (no paths or ids given) add the file, so pytest collects it even when
    # testpaths leave it out; explicit paths/ids keep pytest's own selection untouched.
    if config.args_source != pytest.Config.ArgsSource.ARGS and not _covered(path, config):
        config.args.append(str(path))


def _config_file(config: pytest.Config) -> Path | None:
    from bnconform.config import find_config

    found = find_config(Path(config.rootpath))
    if found is not None and _has_targets(found):
        return found
    if config.getoption("bnconform") or config.getini("bnconform_targets"):
        holder = found or config.inipath
        if holder is None or not Path(holder).is_file():
            raise pytest.UsageError("--bnconform: the checks are collected under the project's pyproject.toml, "
                                    "bnconform.toml or pytest ini file, and the rootdir has none")
        return Path(holder)
    return None


def _has_targets(path: Path) -> bool:
    import tomllib

    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True  # let the collector report the problem with file and line
    table = doc.get("tool", {}).get("bnconform", {}) if path.name == "pyproject.toml" else doc
    return bool(table.get("targets")) if isinstance(table, dict) else True


def _covered(path: Path, config: pytest.Config) -> bool:
    """True when a collection argument already contains the file."""
    resolved = path.resolve()
    for arg in config.args:
        where = (Path(config.invocation_params.dir) / arg.split("::")[0]).resolve()
        if where == resolved or where in resolved.parents:
            return True
    return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """The project's configuration file, or one named on the command line; never another project's
    pyproject.toml met while walking a directory (a vendored package, a test fixture)."""
    chosen = parent.config.stash.get(_FILE, None)
    if file_path == chosen or (file_path.name in CONFIG_NAMES and _named(file_path, parent.config)):
        return BnconformFile.from_parent(parent, path=file_path)
    return None


def _named(path: Path, config: pytest.Config) -> bool:
    here = Path(config.invocation_params.dir)
    return any((here / arg.split("::")[0]).resolve() == path.resolve() for arg in config.args)


class BnconformFile(pytest.File):
    """The configuration file: one TargetCollector per target, in the file's order."""

    def collect(self) -> list[pytest.Collector]:
        from bnconform.errors import UsageError

        try:
            jobs = _jobs(self.config, self.path)
        except UsageError as error:
            raise self.CollectError(f"bnconform: {error}") from None
        return [TargetCollector.from_parent(self, name=_node_name(job.target, self.config.rootpath), job=job,
                                            line=line, order=order)
                for order, (job, line) in enumerate(jobs)]


def _node_name(target: str, root: Path) -> str:
    """A file target as written relative to the rootdir (the config resolved it to an absolute
    path), so node ids and JUnit classnames are the same on every machine and checkout."""
    left, _, name = target.rpartition(":")
    if not left.endswith(".py") or not Path(left).is_absolute():
        return target
    try:
        return f"{Path(left).resolve().relative_to(root.resolve()).as_posix()}:{name}"
    except ValueError:  # outside the rootdir: only the absolute path names it
        return target


class TargetCollector(pytest.Collector):
    """One target: resolved (imported, constructor read) here, so a bad target is one collection error."""

    def __init__(self, *, job: Any, line: int, order: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job, self.line, self.order = job, line, order  # order: the file's, for the reports' index

    def collect(self) -> list[pytest.Item]:
        from bnconform.errors import UsageError

        try:
            _resolve(self.job)
        except UsageError as error:
            raise self.CollectError(f"bnconform: {self.job.target}: {error}") from None
        from bnconform.registry import known_codes

        return [CheckItem.from_parent(self, name=code, code=code) for code in known_codes()]

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, max(self.line - 1, 0), f"bnconform: {self.name}"


def _resolve(job: Any) -> None:
    """Import the target and map its constructor in a child process (bnconform.supervise.resolve):
    the user's code never runs in the pytest process, not even at collection."""
    import json
    import subprocess
    import sys

    from bnconform.errors import UsageError

    request = json.dumps({"target": job.target, "spec": job.options["spec"], "init": job.options.get("init")},
                         default=repr)
    try:
        done = subprocess.run([sys.executable, "-m", "bnconform.supervise.resolve", request], capture_output=True,
                              text=True, timeout=max(60.0, 6 * float(job.options.get("timeout_s") or 10)))
    except subprocess.TimeoutExpired:
        return  # a hang at import is the class's behaviour: the supervised run reports construct-failed
    lines = done.stderr.strip().splitlines()
    if done.returncode == 2 and lines:  # bad input (no such module, constructor cannot be filled)
        raise UsageError(lines[-1])
    # Any other end (a crash, os._exit) is user-code behaviour, reported as construct-failed.


def _jobs(config: pytest.Config, path: Path) -> list[tuple[Any, int]]:
    """(Job, line) for the file's targets and --bnconform / ini targets, options resolved."""
    import argparse

    from bnconform import project
    from bnconform.config import Config, TargetEntry, load_config

    ours = path.name in CONFIG_NAMES and path.is_file() and _has_targets(path)  # else a pytest ini file
    loaded = load_config(path) if ours else Config()
    extra = [*config.getoption("bnconform"), *config.getini("bnconform_targets")]
    known = {e.target for e in loaded.targets}
    entries = [*loaded.targets, *(TargetEntry(t) for t in dict.fromkeys(extra) if t not in known)]
    ini = {key: config.getini(f"bnconform_{key}") for key in INI_KEYS}
    values = {**{k: v for k, v in ini.items() if v}, **loaded.values}
    loaded = Config(loaded.path, tuple(entries), loaded.waivers, values)
    args = argparse.Namespace(**{dest: config.getoption(f"bnconform_{dest}") for dest in
                                 ("spec", "init", "device", "ignore", "fail_on", "seed", "profile", "timeout")},
                              target=None)
    cli_init = _parse_init(args.init or [])
    waivers = (*loaded.waivers, *(project.Waiver(c, "command line", source="--bnconform-ignore")
                                  for c in args.ignore or []))
    return [(project.job_for(args, loaded, entry, cli_init, waivers), entry.line) for entry in entries]


def _parse_init(items: list[str]) -> dict[str, object]:
    from bnconform.construct import parse_init

    return parse_init(items)


class CheckFailed(Exception):
    """A bnconform finding, shown as the test's failure text."""


class CheckItem(pytest.Item):
    """One registered check of one target; the target is checked once per process (under xdist
    its items share a worker: plugin_results)."""

    def __init__(self, *, code: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.code = code
        self.add_marker(pytest.mark.xdist_group(self.parent.name))

    @property
    def job(self) -> Any:
        return self.parent.job

    def runtest(self) -> None:
        result = _result(self.config, self.parent)
        check = next(c for c in result["checks"] if c["id"] == self.code)
        if check["status"] in ("skipped", "blocked"):
            pytest.skip(check["reason"] or check["status"])
        if check["status"] == "errored":
            raise CheckFailed(check["reason"])
        threshold = SEVERITY_RANK[result["settings"]["fail_on"]]
        active = [f for f in check["findings"] if not f["waived"]]
        failing = [f for f in active if SEVERITY_RANK[f["severity"]] >= threshold]
        if failing and all(f.get("caused_by") for f in failing):
            # Its cause's item fails; this one is the same defect seen again (diagnosis.py).
            self.add_report_section("call", "bnconform", "\n\n".join(_describe(f) for f in failing))
            pytest.xfail(f"a consequence of {failing[0]['caused_by']}: fix that first")
        if failing:
            raise CheckFailed("\n\n".join(_describe(f) for f in failing))
        below = [f for f in active if f not in failing]
        if below:  # visible in the report and the terminal summary, never a warning (filterwarnings=error)
            self.add_report_section("call", "bnconform", "\n\n".join(_describe(f) for f in below))
            self.config.stash.setdefault(results.BELOW, []).extend((self.parent.order, self.nodeid, f) for f in below)
        waived = [f for f in check["findings"] if f["waived"]]
        if waived and result["summary"]["verdict"] == "inconclusive":  # the CLI's exit 1, not an xfail
            raise CheckFailed(f"{self.code} is waived, but with it nothing could be verified: the run is "
                              f"inconclusive, never a pass\n\n{_describe(waived[0])}")
        if waived and not failing:
            reason = waived[0].get("waiver", {}).get("reason") or "waived"
            pytest.xfail(f"waived: {self.code}: {reason}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, max(self.parent.line - 1, 0), f"bnconform: {self.code}"


def _describe(finding: dict[str, Any]) -> str:
    cause = f"[a consequence of {finding['caused_by']}: fix that first] " if finding.get("caused_by") else ""
    return (f"{cause}{finding['code']} ({finding['severity']}): {finding['message']}\n"
            f"expected: {finding['expected']}\nobserved: {finding['observed']}\n"
            f"why: {finding['why']}\nfix: {finding['hint']}\n\nReproduce with:\n{finding['repro']}")


def _result(config: pytest.Config, collector: TargetCollector) -> dict[str, Any]:
    job = collector.job
    if job.target not in config.stash.get(results.RESULTS, {}):
        from bnconform.project import check_one

        result = check_one(job)
        if collector.path.name in CONFIG_NAMES and _has_targets(collector.path):  # as `bnconform check` says
            result["settings"]["config"] = str(collector.path)
        results.record(config, job.target, collector.order, result)
    return config.stash[results.RESULTS][job.target]


def _check_nodeid(config: pytest.Config | None, nodeid: str) -> tuple[str, str, str] | None:
    chosen = config.stash.get(_FILE, None) if config is not None else None
    return results.check_nodeid(nodeid, chosen.name) if chosen is not None else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """JUnit: classname `bnconform.<target>`, name `<check>` (pytest would derive them from the file)."""
    config = _CONFIG.get("config")
    parts = _check_nodeid(config, report.nodeid)
    if parts is None:
        return
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # a future pytest: keep its own names
        return
    xml = config.stash.get(xml_key, None) if config is not None else None
    if xml is not None:
        reporter = xml.node_reporter(report)
        reporter.add_attribute("classname", f"bnconform.{parts[1]}")
        reporter.add_attribute("name", parts[2])


_CONFIG: dict[str, pytest.Config] = {}


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG["config"] = session.config


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    below = results.below(config)
    if below:
        terminalreporter.section("bnconform: findings below --bnconform-fail-on (reported, not failing)")
        for nodeid, finding in below:
            terminalreporter.write_line(f"{nodeid}: {finding['severity']}: {finding['message']}")
    from bnconform.waivers import warnings_for

    for result in results.ordered(config):
        for line in warnings_for(result):
            terminalreporter.write_line(f"bnconform: warning: {line}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write reports once: on a worker hand the results to the controller, which writes them."""
    config = session.config
    if hasattr(config, "workeroutput"):
        results.hand_over(config)
        return
    done = results.ordered(config)
    output = config.getoption("bnconform_output") or config.getini("bnconform_output")
    if output and done:
        results.write(Path(output), done, _formats(config))


def _formats(config: pytest.Config) -> list[str] | None:
    """`formats` of the project's `[tool.bnconform]`, as `bnconform check` reads it; None: the default."""
    from bnconform.config import load_config
    from bnconform.errors import UsageError

    path = config.stash.get(_FILE, None)
    if path is None or path.name not in CONFIG_NAMES or not _has_targets(path):
        return None  # a pytest ini file, or no targets of ours in the file
    try:
        return load_config(path).get("formats")
    except UsageError:  # already a collection error; the results written come from other targets
        return None


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:  # pytest-xdist, on the controller
    data = getattr(node, "workeroutput", {}).get("bnconform")
    if data:
        results.gather(node.config, data)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist, on the controller: with `-n` alone or `--dist loadgroup` a target's items go
    to one worker, so the target is checked once (plugin_results.make_scheduler)."""
    path = config.stash.get(_FILE, None)
    if path is None or not _covered(path, config):
        return None  # no check in this run: xdist's own scheduling
    return results.make_scheduler(config, log, path.name)
