"""Packaging that cannot drift: the built wheel holds every module and spec of the source tree,
its metadata states the license and dependencies a plain install needs, and a JSON-only run
imports no plotting library. (.ci/run also installs the wheel into a fresh venv and runs it.)"""

from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("bnconform", "specs", "pyproject.toml", "setup.py", "README.md", "LICENSE")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel built from a copy of the source tree (a build never touches the checkout)."""
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(dist), str(src)], check=True, capture_output=True, text=True)
    (built,) = dist.glob("bnconform-*.whl")
    return zipfile.ZipFile(built)


def source_modules() -> set[str]:
    return {p.relative_to(REPO).as_posix() for p in (REPO / "bnconform").rglob("*.py")
            if "__pycache__" not in p.parts}


def test_wheel_contains_every_module_of_the_source_tree(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    missing = sorted(source_modules() - names)
    assert not missing, f"not in the wheel (a folder without __init__.py?): {missing}"
    assert "bnconform/py.typed" in names or not (REPO / "bnconform" / "py.typed").exists()


def test_wheel_contains_every_builtin_spec(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    specs = sorted(p.name for p in (REPO / "specs").glob("*.toml"))
    assert specs and all(f"bnconform/builtin_specs/{name}" in names for name in specs)
    assert "bnconform/builtin_specs/README.md" in names


def test_wheel_metadata_license_and_plain_install_dependencies(wheel: zipfile.ZipFile) -> None:
    (meta_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    meta = email.message_from_string(wheel.read(meta_name).decode())
    assert meta["License-Expression"] == "MIT"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel.namelist())
    required = {r.split(";")[0].strip() for r in meta.get_all("Requires-Dist") if "extra ==" not in r}
    by_name = {r.split(">")[0].split("=")[0].split("<")[0]: r for r in required}
    assert {"torch", "numpy", "matplotlib", "tabulate", "hypothesis"} <= set(by_name)
    assert "<" not in by_name["torch"], "an upper cap on torch downgrades a user's newer torch"
    assert ">=" in by_name["torch"]


def test_a_json_only_run_imports_no_plotting_library(tmp_path: Path) -> None:
    code = ("import sys; from bnconform.cli import main; "
            "code = main(['check', 'torch.nn:BatchNorm2d', '--format', 'json', '-q']); "
            "print(code, 'matplotlib' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.stdout.splitlines()[-1] == "0 False", done.stdout + done.stderr


BEHAVIOUR_ONLY = '''
import torch
from torch import nn


class BN(nn.Module):
    """Statistics in (1, C, 1, 1) buffers named `means` and `vars`: found by behaviour, not by name."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("means", torch.zeros(1, num_features, 1, 1))
        self.register_buffer("vars", torch.ones(1, num_features, 1, 1))

    def forward(self, x):
        if self.training:
            mean = x.mean((0, 2, 3), keepdim=True)
            var = x.var((0, 2, 3), unbiased=False, keepdim=True)
            n = x.numel() // x.shape[1]
            with torch.no_grad():
                self.means.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.vars.mul_(1 - self.momentum).add_(self.momentum * var * n / (n - 1))
        else:
            mean, var = self.means, self.vars
        y = (x - mean) / torch.sqrt(var + self.eps)
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
'''


def test_the_installed_wheel_finds_statistics_by_behaviour_and_writes_every_report(
        wheel: zipfile.ZipFile, tmp_path: Path) -> None:
    """End to end through the installed package, from a folder outside the checkout: the
    wheel's own modules and specs (not the source tree) diagnose a class whose statistics
    have no conventional name."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                    wheel.filename], check=True, capture_output=True, text=True, timeout=300)
    work = tmp_path / "work"
    work.mkdir()
    (work / "user_bn.py").write_text(BEHAVIOUR_ONLY)
    env = {**os.environ, "PYTHONPATH": str(site), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    where = subprocess.run([sys.executable, "-c", "import bnconform, bnconform.spec as s; "
                            "print(bnconform.__file__); print(s.load_spec('keras').source)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr

    done = subprocess.run([sys.executable, "-m", "bnconform", "check", "user_bn.py:BN", "--output", "out"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    report = json.loads((work / "out" / "bnconform-report.json").read_text())
    codes = {f["code"] for f in report["findings"]}
    # each true of the class: (1, C, 1, 1) statistics, no counter, `1 - None` with momentum=None,
    # float16 arithmetic in float16, no batch-of-one error, state_dict keys other than torch's
    assert codes == {"running-stats-shape", "num-batches-tracked", "momentum-none", "dtype-support",
                     "batch-size-one", "state-dict"}
    shape = next(f for f in report["findings"] if f["code"] == "running-stats-shape")
    assert "(1, 5, 1, 1)" in shape["observed"]
    assert {c["id"]: c["status"] for c in report["checks"]}["running-stats-missing"] == "passed"
    for ext in ("md", "html", "xml"):
        assert (work / "out" / f"bnconform-report.{ext}").stat().st_size > 0
    assert not (work / ".hypothesis").exists()
