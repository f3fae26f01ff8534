"""TARGET string -> Target: load `pkg.module:Name` or `path/to/file.py:Name`.

Every failure becomes a one-line TargetError naming the bad value; no traceback escapes,
because a user pointing the tool at the wrong thing should read one sentence, not a stack.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from bnconform.errors import TargetError

FORM = "expected MODULE:NAME or path/to/file.py:NAME, e.g. torch.nn:BatchNorm2d"


@dataclass(frozen=True)
class Target:
    """What the TARGET string resolved to.

    `file` is the absolute path for file targets and None for module targets, so a
    repro snippet knows whether it must load a file or can use a plain import.
    """

    text: str
    obj: Any
    qualname: str
    file: str | None
    doc: str
    is_class: bool

    @property
    def module_part(self) -> str:
        """The text before the colon (a module name or a file path)."""
        return self.text.rpartition(":")[0]

    @property
    def attr_path(self) -> str:
        """The dotted attribute path after the colon, e.g. `Outer.Inner`."""
        return self.text.rpartition(":")[2]


def load_target(text: str) -> Target:
    """Resolve TARGET text to a class or factory; raise TargetError with one line on failure."""
    left, colon, attr_path = text.strip().rpartition(":")
    if not colon or not left or not attr_path:
        raise TargetError(f"bad target {text!r}: {FORM}")
    if not all(part.isidentifier() for part in attr_path.split(".")):
        raise TargetError(f"bad target {text!r}: {attr_path!r} is not a dotted Python name")
    file: str | None = None
    if _is_file(left):
        path = Path(left).expanduser().resolve()
        module, file = _load_file(path, text), str(path)
    else:
        module = _import_module(left)
    obj = _resolve(module, left, attr_path)
    _check_kind(obj, text)
    return Target(
        text=text.strip(),
        obj=obj,
        qualname=_qualname(obj, module, Path(file).stem if file else None),
        file=file,
        doc=_first_doc_line(obj),
        is_class=inspect.isclass(obj),
    )


def _is_file(left: str) -> bool:
    return left.endswith(".py") or "/" in left or os.sep in left


def _load_file(path: Path, text: str) -> ModuleType:
    if not path.is_file():
        raise TargetError(f"bad target {text!r}: file not found: {path}")
    if path.suffix != ".py":
        raise TargetError(f"bad target {text!r}: {path} is not a .py file")
    # A unique name per path: two files called bn.py must not overwrite each other.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"_bnconform_target_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"bad target {text!r}: cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before exec so dataclasses/pickle inside the file can find their module.
    sys.modules[name] = module
    folder = str(path.parent)
    sys.path.insert(0, folder)  # sibling imports (`from helpers import x`) must work
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise TargetError(f"loading {path} raised {_describe_exception(exc)}") from None
    finally:
        _remove_first(sys.path, folder)
    return module


def _import_module(name: str) -> ModuleType:
    # A console script does not put the working directory on sys.path, but users expect
    # `bnconform check mybn:BatchNorm` to find ./mybn.py; appended so installed names win.
    added = os.getcwd() not in sys.path
    if added:
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            where = "" if missing == name else f" (while importing {name!r})"
            raise TargetError(
                f"module {missing!r} not found{where}; is it installed or on PYTHONPATH? "
                "(a file target needs its .py suffix)"
            ) from None
        raise TargetError(f"importing {name} raised {_describe_exception(exc)}") from None
    except (Exception, SystemExit) as exc:
        raise TargetError(f"importing {name} raised {_describe_exception(exc)}") from None
    finally:
        if added:
            _remove_first(sys.path, os.getcwd())


def _remove_first(items: list[str], value: str) -> None:
    if value in items:
        items.remove(value)


def _describe_exception(exc: BaseException) -> str:
    """`Type: message (file:line)` on one line, the location being the deepest user frame."""
    message = " ".join(str(exc).split())
    location = _user_location(exc)
    if isinstance(exc, SyntaxError):
        message = " ".join((exc.msg or "").split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"{text} ({location})" if location else text


def _user_location(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    user = [f for f in frames if not _is_library(f.filename)]
    frame = (user or frames or [None])[-1]
    return f"{frame.filename}:{frame.lineno}" if frame else ""


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths["stdlib"], paths["purelib"], paths["platlib"], str(Path(__file__).parent)}
    return tuple(str(Path(p).resolve()) + os.sep for p in roots)


def _is_library(filename: str) -> bool:
    return str(Path(filename).resolve()).startswith(_library_roots())


def _resolve(module: ModuleType, left: str, attr_path: str) -> Any:
    obj: Any = module
    owner = left
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"{owner} has no attribute {part!r}{_suggest(obj, part)}") from None
        except Exception as exc:  # a property or module __getattr__ in user code raised
            raise TargetError(f"getting {owner}.{part} raised {_describe_exception(exc)}") from None
        owner = f"{owner}:{part}" if owner == left else f"{owner}.{part}"
    return obj


def _suggest(owner: Any, name: str) -> str:
    public = sorted(n for n in dir(owner) if not n.startswith("_"))
    close = difflib.get_close_matches(name, public, n=10, cutoff=0.5)
    if not close:
        lowered = name.lower()
        close = [n for n in public if lowered in n.lower() or n.lower() in lowered][:10]
    return f"; similar names: {', '.join(close)}" if close else ""


def _check_kind(obj: Any, text: str) -> None:
    if inspect.isclass(obj):
        if not issubclass(obj, torch.nn.Module):
            bases = ", ".join(b.__name__ for b in obj.__bases__)
            raise TargetError(
                f"target {text!r} is a class but not a torch.nn.Module subclass "
                f"(bases: {bases})"
            )
        return
    if isinstance(obj, torch.nn.Module):
        raise TargetError(
            f"target {text!r} is an instance of {type(obj).__name__}, not a class; "
            f"name the class instead"
        )
    if isinstance(obj, ModuleType) or not callable(obj):
        kind = "a module" if isinstance(obj, ModuleType) else f"a {type(obj).__name__} value"
        raise TargetError(f"target {text!r} is {kind}, not a class or factory callable")


def _qualname(obj: Any, module: ModuleType, stem: str | None) -> str:
    mod_name = getattr(obj, "__module__", None) or module.__name__
    if stem is not None and mod_name == module.__name__:
        mod_name = stem  # the unique loader name means nothing to a reader
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{mod_name}.{name}"


def _first_doc_line(obj: Any) -> str:
    # obj.__doc__, not inspect.getdoc: getdoc inherits nn.Module's docstring for undocumented
    # subclasses, which would describe the wrong thing.
    doc = obj.__doc__ if isinstance(getattr(obj, "__doc__", None), str) else ""
    lines = [line.strip() for line in inspect.cleandoc(doc).splitlines() if line.strip()]
    return lines[0] if lines else ""
