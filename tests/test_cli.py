"""The command line: every kind of bad input is one line and exit 2; good paths write reports.

Most cases call `bnconform.cli.main` in-process (a subprocess of torch costs seconds); a
few run the real `python -m bnconform` process, where only a real process can prove the
point: no traceback ever reaches the terminal, the entry point works, and `report`
re-renders a saved result without importing the user's module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bnconform import __version__
from bnconform.cli import main

REPO = Path(__file__).resolve().parents[1]
FIXTURES = "tests.fixtures.cli"
TUTORIAL = "bnconform.examples.tutorial:BatchNorm"
TUTORIAL_ERRORS = ("momentum-inverted", "running-stats-shape", "dtype-support")
REPORT_FILES = {
    "json": "bnconform-report.json",
    "md": "bnconform-report.md",
    "html": "bnconform-report.html",
    "junit": "bnconform-report.xml",
}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test runs in its own directory (reports/ lands there) without CI variables."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("BNCONFORM_DEBUG", raising=False)
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> str:
    """Exit 2 and exactly one stderr line `bnconform: error: ...` containing every fragment."""
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{err}"
    assert lines[0].startswith("bnconform: error: "), lines[0]
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def run_process(
    *argv: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """The real `python -m bnconform`, with the repo importable (tests.fixtures targets)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("GITHUB_STEP_SUMMARY", "BNCONFORM_DEBUG")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environ.get("PYTHONPATH")]))
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bnconform", *argv],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- bad input: one line, exit 2 ---------------------------------------------------------------

BAD_CHECK_ARGS = {
    "missing module": (["no_such_module_xyz:BatchNorm"], ["'no_such_module_xyz' not found"]),
    "missing submodule": (["tests.fixtures.cli.nope:BatchNorm"], ["not found"]),
    "ImportError inside the module": (
        [f"{FIXTURES}.raises_import:BatchNorm"],
        ["ImportError", "fused_bn", "raises_import.py:3"],
    ),
    "no colon": (["torch.nn.BatchNorm2d"], ["expected MODULE:NAME"]),
    "missing attribute": (["torch.nn:BatchNorm2x"], ["no attribute 'BatchNorm2x'", "BatchNorm2d"]),
    "a constant": ([f"{FIXTURES}.targets:NOT_A_CLASS"], ["not a class or factory callable"]),
    "a module": (["torch:nn"], ["is a module"]),
    "not an nn.Module": ([f"{FIXTURES}.targets:NotAModule"], ["not a torch.nn.Module subclass"]),
    "unknown required argument": ([f"{FIXTURES}.targets:GroupedBatchNorm2d"], ["'groups'", "--init groups=VALUE"]),
    "--init without =": (["torch.nn:BatchNorm2d", "--init", "momentum"], ["bad --init 'momentum'"]),
    "--init without key": (["torch.nn:BatchNorm2d", "--init", "=3"], ["KEY=VALUE"]),
    "--init without value": (["torch.nn:BatchNorm2d", "--init", "eps="], ["KEY=VALUE"]),
    "--init code": (["torch.nn:BatchNorm2d", "--init", "eps=__import__('os')"], ["not a Python literal"]),
    "--init twice": (["torch.nn:BatchNorm2d", "--init", "eps=1", "--init", "eps=2"], ["given twice"]),
    "--init unknown key": (
        ["torch.nn:BatchNorm2d", "--init", "groups=4"],
        ["--init groups is not a parameter", "num_features"],
    ),
    "unknown spec": (["torch.nn:BatchNorm2d", "--spec", "pytorh"], ["unknown spec 'pytorh'", "keras"]),
    "missing spec file": (["torch.nn:BatchNorm2d", "--spec", "nowhere.toml"], ["nowhere.toml"]),
    "unknown --ignore": (
        ["torch.nn:BatchNorm2d", "--ignore", "momentum-invert"],
        ["'momentum-invert' is not a finding code", "momentum-inverted"],
    ),
    "bad --format": (["torch.nn:BatchNorm2d", "--format", "json,pdf"], ["unknown format 'pdf'", "junit"]),
    "empty --format": (["torch.nn:BatchNorm2d", "--format", ","], ["--format"]),
    "bad --fail-on": (["torch.nn:BatchNorm2d", "--fail-on", "fatal"], ["--fail-on", "'fatal'", "warning"]),
    "bad --device": (["torch.nn:BatchNorm2d", "--device", "tpu"], ["--device", "'tpu'"]),
    "bad --seed": (["torch.nn:BatchNorm2d", "--seed", "one"], ["--seed", "'one'"]),
    "bad --profile": (["torch.nn:BatchNorm2d", "--profile", "fast"], ["--profile"]),
    "zero --timeout": (["torch.nn:BatchNorm2d", "--timeout", "0"], ["--timeout 0"]),
    "negative --timeout": (["torch.nn:BatchNorm2d", "--timeout", "-1"], ["--timeout -1"]),
    "unknown option": (["torch.nn:BatchNorm2d", "--colour"], ["unrecognized arguments: --colour"]),
}


@pytest.mark.parametrize("args, fragments", BAD_CHECK_ARGS.values(), ids=BAD_CHECK_ARGS.keys())
def test_bad_check_input_is_one_line(capsys, args, fragments):
    code, out, err = cli(capsys, "check", *args)
    assert_one_line_error(code, err, *fragments)
    assert not Path("reports").exists()  # nothing is written for a run that never started


def test_missing_file_target(capsys):
    code, _, err = cli(capsys, "check", "nowhere/bn.py:BatchNorm")
    assert_one_line_error(code, err, "file not found", "bn.py")


def test_file_with_syntax_error(capsys, in_tmp):
    write(in_tmp / "broken.py", "import torch\ndef forward(x:\n    return x\n")
    code, _, err = cli(capsys, "check", "broken.py:BatchNorm")
    assert_one_line_error(code, err, "SyntaxError", "broken.py:2")


def test_file_importing_a_missing_dependency(capsys, in_tmp):
    write(in_tmp / "needs_dep.py", "import torch\nimport not_installed_xyz\n")
    code, _, err = cli(capsys, "check", "needs_dep.py:BatchNorm")
    assert_one_line_error(code, err, "ModuleNotFoundError", "not_installed_xyz", "needs_dep.py:2")


def test_file_that_is_not_python(capsys, in_tmp):
    write(in_tmp / "bn.txt", "not python")
    code, _, err = cli(capsys, "check", "./bn.txt:BatchNorm")
    assert_one_line_error(code, err, "not a .py file")


def test_missing_class_in_file_suggests_names(capsys, in_tmp):
    write(in_tmp / "mybn.py", "from torch import nn\n\nclass BatchNorm(nn.BatchNorm2d):\n    pass\n")
    code, _, err = cli(capsys, "check", "mybn.py:Batchnorm")
    assert_one_line_error(code, err, "no attribute 'Batchnorm'", "similar names: BatchNorm")


def test_required_argument_suggestion_works(capsys, in_tmp):
    target = f"{FIXTURES}.targets:GroupedBatchNorm2d"
    line = assert_one_line_error(*cli(capsys, "check", target)[::2], "'groups'")
    suggestion = line.split("--init ")[1].split()[0].replace("VALUE", "4")
    code, out, err = cli(capsys, "check", target, "--init", suggestion, "--format", "json")
    assert (code, err) == (0, "")
    result = json.loads((in_tmp / "reports" / REPORT_FILES["json"]).read_text())
    assert "groups=4" in result["target"]["construction"]


def test_factory_returning_int_is_a_construct_finding(capsys, in_tmp):
    """Only calling a factory shows what it returns: that is user code, so it is a finding."""
    code, _, err = cli(capsys, "check", f"{FIXTURES}.targets:returns_int", "--format", "json")
    assert code == 1 and err == ""
    result = json.loads((in_tmp / "reports" / REPORT_FILES["json"]).read_text())
    assert [f["code"] for f in result["findings"]] == ["construct-failed"]
    assert "returned int instead of an nn.Module" in result["findings"][0]["message"]
    assert {c["status"] for c in result["checks"] if c["id"] != "construct-failed"} == {"blocked"}


MALFORMED_SPECS = {
    "toml syntax": ('[spec]\nextends = "pytorch"\nname = "x"\n[running_stats\n', ["bad.toml:4", "TOML"]),
    "unknown key": (
        '[spec]\nextends = "pytorch"\nname = "x"\n[running_stats]\nvariants = "biased"\n',
        ["bad.toml:5", "variants", "unknown key", "momentum_convention"],
    ),
    "bad enum": (
        '[spec]\nextends = "pytorch"\nname = "x"\n[running_stats]\nmomentum_convention = "newest"\n',
        ["bad.toml:5", "'newest'", "'new-weight'"],
    ),
    "unknown table": (
        '[spec]\nextends = "pytorch"\nname = "x"\n[runing_stats]\nvariance = "biased"\n',
        ["bad.toml", "runing_stats"],
    ),
}


@pytest.mark.parametrize("text, fragments", MALFORMED_SPECS.values(), ids=MALFORMED_SPECS.keys())
def test_malformed_spec_names_file_line_and_key(capsys, in_tmp, text, fragments):
    write(in_tmp / "bad.toml", text)
    code, _, err = cli(capsys, "check", "torch.nn:BatchNorm2d", "--spec", "bad.toml")
    assert_one_line_error(code, err, *fragments)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_device_cuda_without_cuda(capsys):
    code, _, err = cli(capsys, "check", "torch.nn:BatchNorm2d", "--device", "cuda")
    assert_one_line_error(code, err, "--device cuda", "no CUDA device")


@pytest.mark.parametrize(
    "args, fragments",
    [
        ([], ["command"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
        (["check"], ["target"]),
        (["explain", "nope"], ["unknown finding code 'nope'", "momentum-inverted"]),
        (["report", "missing.json"], ["cannot read missing.json"]),
    ],
    ids=["no command", "unknown command", "check without target", "explain unknown", "report missing"],
)
def test_other_usage_errors(capsys, args, fragments):
    assert_one_line_error(*cli(capsys, *args)[::2], *fragments)


@pytest.mark.parametrize(
    "content, fragments",
    [
        ('{"schema": "something.else/1"}', ["not a bnconform result", "something.else/1"]),
        ("[1, 2, 3]", ["not a bnconform result"]),
        ("{not json", ["invalid JSON"]),
        ('{"schema": "bnconform.result/99"}', ["bnconform.result/99"]),
    ],
    ids=["other schema", "a list", "invalid json", "future schema"],
)
def test_report_of_a_non_result(capsys, in_tmp, content, fragments):
    write(in_tmp / "other.json", content)
    assert_one_line_error(*cli(capsys, "report", "other.json")[::2], "other.json", *fragments)


# -- good paths ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch_bn_run(tmp_path_factory) -> tuple[int, str, str, Path]:
    """One in-process default check of torch.nn.BatchNorm2d, shared by several tests."""
    out = tmp_path_factory.mktemp("torch-bn")
    old = os.environ.pop("GITHUB_STEP_SUMMARY", None)
    try:
        import contextlib
        import io

        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["check", "torch.nn:BatchNorm2d", "--output", str(out)])
    finally:
        if old is not None:
            os.environ["GITHUB_STEP_SUMMARY"] = old
    return code, stdout.getvalue(), stderr.getvalue(), out


def test_torch_batchnorm2d_passes_and_writes_every_format(torch_bn_run):
    code, out, err, folder = torch_bn_run
    assert (code, err) == (0, "")
    for fmt, name in REPORT_FILES.items():
        assert (folder / name).stat().st_size > 0, fmt
        assert f"wrote {fmt}" in out
    result = json.loads((folder / REPORT_FILES["json"]).read_text())
    assert result["summary"]["verdict"] == "pass"
    assert result["summary"]["counts"]["error"] == result["summary"]["counts"]["warning"] == 0
    assert result["target"]["qualname"].endswith("BatchNorm2d")
    assert (folder / REPORT_FILES["junit"]).read_text().lstrip().startswith("<?xml")
    assert "<html" in (folder / REPORT_FILES["html"]).read_text().lower()


def test_tutorial_fails_with_its_classic_mistakes(capsys, in_tmp):
    code, out, err = cli(capsys, "check", TUTORIAL, "--format", "json,md")
    assert (code, err) == (1, "")
    result = json.loads((in_tmp / "reports" / REPORT_FILES["json"]).read_text())
    codes = {f["code"] for f in result["findings"]}
    assert {*TUTORIAL_ERRORS, "running-var-estimator"} <= codes
    assert result["summary"]["verdict"] == "fail"
    for name in TUTORIAL_ERRORS:
        assert name in out  # the terminal summary names them too
    assert "momentum-inverted" in (in_tmp / "reports" / REPORT_FILES["md"]).read_text()


def test_ignoring_every_error_code_passes_with_findings_waived(capsys, in_tmp):
    cli(capsys, "check", TUTORIAL, "--format", "json", "--output", "first")
    first = json.loads((in_tmp / "first" / REPORT_FILES["json"]).read_text())
    errors = sorted({f["code"] for f in first["findings"] if f["severity"] == "error"})
    assert set(TUTORIAL_ERRORS) <= set(errors)
    ignore = [arg for error in errors for arg in ("--ignore", error)]
    code, _, err = cli(capsys, "check", TUTORIAL, "--format", "json", *ignore)
    assert (code, err) == (0, "")
    result = json.loads((in_tmp / "reports" / REPORT_FILES["json"]).read_text())
    waived = {f["code"] for f in result["findings"] if f["waived"]}
    assert set(errors) <= waived
    # Anything else waived is a consequence of a waived cause, waived with it.
    assert all(f["details"].get("waived_with") in errors for f in result["findings"]
               if f["waived"] and f["code"] not in errors)
    assert result["summary"]["verdict"] == "pass"
    assert result["summary"]["counts"]["waived"] >= len(errors)
    assert result["settings"]["ignore"] == errors


def test_fail_on_warning_fails_a_warning_only_target(capsys, in_tmp):
    target = f"{FIXTURES}.robust:EpsDefault2d"
    code, _, _ = cli(capsys, "check", target, "--format", "json")
    result = json.loads((in_tmp / "reports" / REPORT_FILES["json"]).read_text())
    assert {f["severity"] for f in result["findings"]} == {"warning"}
    assert code == 0
    code, _, err = cli(capsys, "check", target, "--format", "json", "--fail-on", "warning")
    assert (code, err) == (1, "")
    result = json.loads((in_tmp / "reports" / REPORT_FILES["json"]).read_text())
    assert result["settings"]["fail_on"] == "warning"
    assert result["summary"]["verdict"] == "fail"


def test_format_json_writes_only_json(capsys, in_tmp):
    code, out, _ = cli(capsys, "check", f"{FIXTURES}.robust:EpsDefault2d", "--format", "json", "--output", "only")
    assert code == 0
    assert sorted(p.name for p in (in_tmp / "only").iterdir()) == [REPORT_FILES["json"]]
    assert "wrote json" in out and "wrote md" not in out


def test_file_target(capsys, in_tmp):
    folder = in_tmp / "path" / "to"
    folder.mkdir(parents=True)
    # The corpus's correct reference: a class named BatchNorm must take every rank 2-5.
    write(folder / "file.py", (REPO / "tests" / "corpus" / "reference.py").read_text())
    code, _, err = cli(capsys, "check", "path/to/file.py:BatchNorm", "--format", "json")
    assert (code, err) == (0, "")
    result = json.loads((in_tmp / "reports" / REPORT_FILES["json"]).read_text())
    assert result["target"]["file"] == str((folder / "file.py").resolve())
    assert result["target"]["text"] == "path/to/file.py:BatchNorm"
    assert result["target"]["qualname"] == "file.BatchNorm"
    assert result["summary"]["counts"]["error"] == 0


def test_github_step_summary_gets_the_markdown(capsys, in_tmp, monkeypatch):
    summary = write(in_tmp / "summary.md", "# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, _, _ = cli(capsys, "check", TUTORIAL, "--format", "json")
    assert code == 1
    text = summary.read_text()
    assert text.startswith("# earlier step\n")  # appended, not overwritten
    assert "momentum-inverted" in text[len("# earlier step\n") :]


def test_specs_lists_the_builtin_specs(capsys):
    code, out, err = cli(capsys, "specs")
    assert (code, err) == (0, "")
    names = {line.split()[0] for line in out.splitlines()[2:] if line.strip()}
    assert names == {"pytorch", "keras", "tf-fused", "flax", "onnx", "mxnet", "paddle", "frozen"}


def test_explain_a_code(capsys):
    code, out, err = cli(capsys, "explain", "momentum-inverted")
    assert (code, err) == (0, "")
    assert out.startswith("momentum-inverted (error")
    assert "Why:" in out and "Fix:" in out


def test_report_rerenders_in_process(capsys, torch_bn_run, in_tmp):
    saved = in_tmp / "saved.json"
    saved.write_text((torch_bn_run[3] / REPORT_FILES["json"]).read_text())
    code, out, err = cli(capsys, "report", str(saved), "--format", "md,junit", "--output", "again")
    assert (code, err) == (0, "")
    assert sorted(p.name for p in (in_tmp / "again").iterdir()) == [REPORT_FILES["md"], REPORT_FILES["junit"]]


# -- the real process ---------------------------------------------------------------------------


def test_version_via_python_m(in_tmp):
    done = run_process("--version", cwd=in_tmp)
    assert done.returncode == 0
    assert done.stdout.strip() == f"bnconform {__version__}"


BAD_IN_A_PROCESS = {
    "missing module": ["check", "no_such_module_xyz:BatchNorm"],
    "ImportError inside": ["check", f"{FIXTURES}.raises_import:BatchNorm"],
    "syntax error": ["check", "broken.py:BatchNorm"],
    "needs --init": ["check", f"{FIXTURES}.targets:GroupedBatchNorm2d"],
    "malformed spec": ["check", "torch.nn:BatchNorm2d", "--spec", "bad.toml"],
    "explain unknown": ["explain", "nope"],
    "report of a non-result": ["report", "other.json"],
}


def test_no_traceback_reaches_the_terminal(in_tmp):
    """Each bad input in a real process: one stderr line, exit 2, nothing on stdout."""
    write(in_tmp / "broken.py", "def f(:\n")
    write(in_tmp / "bad.toml", "[spec\n")
    write(in_tmp / "other.json", "{}")
    for name, argv in BAD_IN_A_PROCESS.items():
        done = run_process(*argv, cwd=in_tmp)
        assert "Traceback" not in done.stderr + done.stdout, name
        assert_one_line_error(done.returncode, done.stderr)
        assert done.stdout == "", name


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_device_cuda_without_cuda_in_a_process(in_tmp):
    done = run_process("check", "torch.nn:BatchNorm2d", "--device", "cuda", cwd=in_tmp)
    assert_one_line_error(done.returncode, done.stderr, "--device cuda")


def test_report_works_without_the_users_module(in_tmp):
    """Check a file target, delete the file, then re-render: `report` imports no user code."""
    write(
        in_tmp / "userbn.py",
        "from torch import nn\n\n\nclass BatchNorm2d(nn.BatchNorm2d):\n"
        "    def __init__(self, num_features, eps=1e-3, momentum=0.1):\n"
        "        super().__init__(num_features, eps, momentum)\n",
    )
    checked = run_process("check", "userbn.py:BatchNorm2d", "--format", "json", "--output", "out", cwd=in_tmp)
    assert checked.returncode == 0, checked.stderr
    (in_tmp / "userbn.py").unlink()
    saved = in_tmp / "saved.json"
    (in_tmp / "out" / REPORT_FILES["json"]).rename(saved)
    probe = (
        "import runpy, sys; sys.argv = ['bnconform', 'report', 'saved.json', '--format', "
        "'md,html,junit']\ntry:\n    runpy.run_module('bnconform', run_name='__main__')\n"
        "except SystemExit as e:\n    code = e.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=in_tmp,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.stderr == ""
    assert done.stdout.splitlines()[-1] == "NO-TORCH 0"
    for fmt in ("md", "html", "junit"):
        text = (in_tmp / REPORT_FILES[fmt]).read_text()
        assert "userbn" in text and "eps-default" in text, fmt
