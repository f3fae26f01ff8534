"""load_target: module and file targets, and one-line TargetErrors that name the bad value."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from bnconform.errors import TargetError, UsageError
from bnconform.target import Target, load_target

FIXTURES = Path(__file__).parent / "fixtures"


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def error_for(text: str) -> str:
    with pytest.raises(TargetError) as info:
        load_target(text)
    message = str(info.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"])
def test_torch_batchnorm_loads(name: str) -> None:
    target = load_target(f"torch.nn:{name}")
    assert target.obj is getattr(torch.nn, name)
    assert target.qualname == f"torch.nn.modules.batchnorm.{name}"
    assert target.file is None and target.is_class
    assert target.doc.startswith("Applies Batch Normalization")


def test_target_error_is_usage_error() -> None:
    assert issubclass(TargetError, UsageError)


def test_file_target_relative_and_absolute(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path, "mybn.py", '''
        from torch import nn
        class BN(nn.Module):
            """My batch norm.

            Longer text.
            """
            def __init__(self, c):
                super().__init__()
    ''')
    absolute = load_target(f"{tmp_path / 'mybn.py'}:BN")
    assert absolute.file == str((tmp_path / "mybn.py").resolve())
    assert absolute.doc == "My batch norm."
    assert absolute.qualname == "mybn.BN"
    monkeypatch.chdir(tmp_path)
    relative = load_target("./mybn.py:BN")
    assert relative.file == absolute.file and relative.text == "./mybn.py:BN"


def test_file_target_sibling_import_and_path_restored(tmp_path: Path) -> None:
    write(tmp_path, "helpers_for_bn.py", "from torch import nn\nclass Base(nn.Module):\n    pass\n")
    write(tmp_path, "bn_sib.py", "from helpers_for_bn import Base\nclass BN(Base):\n    pass\n")
    import sys

    before = list(sys.path)
    target = load_target(f"{tmp_path / 'bn_sib.py'}:BN")
    assert target.obj.__mro__[1].__name__ == "Base"
    assert sys.path == before


def test_nested_attribute_and_undocumented_class(tmp_path: Path) -> None:
    write(tmp_path, "outer.py", '''
        from torch import nn
        class Outer:
            class Inner(nn.Module):
                pass
    ''')
    target = load_target(f"{tmp_path / 'outer.py'}:Outer.Inner")
    assert target.obj.__name__ == "Inner" and target.doc == ""  # not nn.Module's docstring


def test_module_target_from_cwd(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path, "cwd_bn_mod.py", "from torch import nn\nclass BN(nn.BatchNorm1d):\n    pass\n")
    monkeypatch.chdir(tmp_path)
    target = load_target("cwd_bn_mod:BN")
    assert target.file is None and target.qualname == "cwd_bn_mod.BN"


def test_factory_function() -> None:
    target = load_target(f"{FIXTURES / 'bn_variants.py'}:make_bn")
    assert not target.is_class and callable(target.obj)


def test_no_colon() -> None:
    message = error_for("torch.nn.BatchNorm2d")
    assert "'torch.nn.BatchNorm2d'" in message and "MODULE:NAME" in message


def test_module_not_found() -> None:
    message = error_for("no_such_module_xyz:BN")
    assert "module 'no_such_module_xyz' not found" in message


def test_submodule_not_found_names_missing_part() -> None:
    message = error_for("torch.nope_xyz:BN")
    assert "'torch.nope_xyz' not found" in message


def test_import_error_inside_user_module(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path, "bad_import_mod.py", "import definitely_missing_dep_xyz\n")
    monkeypatch.chdir(tmp_path)
    message = error_for("bad_import_mod:BN")
    assert message.startswith("importing bad_import_mod raised ModuleNotFoundError")
    assert "definitely_missing_dep_xyz" in message and "bad_import_mod.py:1" in message


def test_file_not_found(tmp_path: Path) -> None:
    message = error_for(f"{tmp_path / 'missing.py'}:BN")
    assert "file not found" in message and "missing.py" in message


def test_exception_while_importing_user_file_points_at_user_line(tmp_path: Path) -> None:
    write(tmp_path, "raises.py", "import torch\n\nx = 1\ntorch.zeros(2) @ torch.zeros(3)\n")
    message = error_for(f"{tmp_path / 'raises.py'}:BN")
    assert "RuntimeError" in message and "raises.py:4" in message


def test_syntax_error_in_user_file(tmp_path: Path) -> None:
    write(tmp_path, "syntax.py", "x = 1\ndef broken(:\n")
    message = error_for(f"{tmp_path / 'syntax.py'}:BN")
    assert "SyntaxError" in message and "syntax.py:2" in message


def test_system_exit_in_user_file(tmp_path: Path) -> None:
    write(tmp_path, "exits.py", "raise SystemExit('bye')\n")
    assert "SystemExit: bye" in error_for(f"{tmp_path / 'exits.py'}:BN")


def test_attribute_missing_suggests_similar_names() -> None:
    message = error_for("torch.nn:BatchNorm")
    assert "'BatchNorm'" in message and "BatchNorm2d" in message
    assert len(message.split("similar names: ")[1].split(", ")) <= 10


def test_attribute_missing_in_nested_path(tmp_path: Path) -> None:
    write(tmp_path, "outer2.py", "class Outer:\n    pass\n")
    message = error_for(f"{tmp_path / 'outer2.py'}:Outer.Inner")
    assert "Outer has no attribute 'Inner'" in message


def test_not_a_class_or_callable() -> None:
    message = error_for("torch.nn.modules.batchnorm:__name__")
    assert "str value" in message and "not a class or factory" in message


def test_module_instance_rejected(tmp_path: Path) -> None:
    write(tmp_path, "inst.py", "from torch import nn\nbn = nn.BatchNorm1d(3)\n")
    message = error_for(f"{tmp_path / 'inst.py'}:bn")
    assert "instance of BatchNorm1d" in message


def test_class_not_module_subclass(tmp_path: Path) -> None:
    write(tmp_path, "plain.py", "class BN:\n    pass\n")
    message = error_for(f"{tmp_path / 'plain.py'}:BN")
    assert "not a torch.nn.Module subclass" in message and "bases: object" in message


def test_target_is_frozen() -> None:
    target = load_target("torch.nn:BatchNorm2d")
    assert isinstance(target, Target)
    with pytest.raises(AttributeError):
        target.text = "x"  # type: ignore[misc]
