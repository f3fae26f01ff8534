"""Packaging that cannot drift: the built wheel holds every module and spec of the source tree,
its metadata states the license and dependencies a plain install needs, and a JSON-only run
imports no plotting library. (.ci/run also installs the wheel into a fresh venv and runs it.)"""

from __future__ import annotations

import email
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
