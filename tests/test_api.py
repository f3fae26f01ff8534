"""The Python API takes objects, returns a typed Report, and asserts with the fixes listed."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import bnconform
from bnconform.errors import UsageError
from bnconform.examples.tutorial import BatchNorm as Tutorial
from bnconform.findings import Finding


@pytest.fixture(scope="module")
def torch_report() -> bnconform.Report:
    return bnconform.check(torch.nn.BatchNorm2d)


def test_a_class_object_is_checked_like_its_import_string(torch_report: bnconform.Report) -> None:
    assert torch_report.ok and torch_report.failing == []
    assert not any(f.severity == "error" for f in torch_report.findings)
    assert torch_report.target == "torch.nn.modules.batchnorm:BatchNorm2d"
    assert torch_report.domain["construction"].startswith("BatchNorm2d(num_features=")
    assert torch_report.domain["ranks"] == [4] and "running_var" in torch_report.domain["tensors"]
    assert torch_report.fingerprint["closest_spec"]["name"] == "pytorch"


def test_report_writes_the_cli_files(torch_report: bnconform.Report, tmp_path: Path) -> None:
    written = torch_report.write(tmp_path, ["json", "md"])
    assert set(written) == {"json", "md"} and (tmp_path / "bnconform-report.json").is_file()


def test_assert_conforms_lists_each_failing_finding_with_its_fix() -> None:
    with pytest.raises(AssertionError) as error:
        bnconform.assert_conforms(Tutorial)
    text = str(error.value)
    assert text.startswith("bnconform.examples.tutorial:BatchNorm does not conform to spec 'pytorch'")
    assert "momentum-inverted (error)" in text and "fix: " in text and "expected: " in text


def test_waivers_keep_the_finding_visible_with_its_reason() -> None:
    waiver = bnconform.Waiver("momentum-inverted", "checkpoints use the Keras value", source="test")
    report = bnconform.check(Tutorial, waivers=[waiver], fail_on="error")
    (finding,) = [f for f in report.result["findings"] if f["code"] == "momentum-inverted"]
    assert finding["waived"] and finding["waiver"]["reason"] == "checkpoints use the Keras value"
    assert all(isinstance(f, Finding) for f in report.findings)
    assert "momentum-inverted" not in {f.code for f in report.failing}
    assert report.result["settings"]["waivers"][0]["status"] == "used"


def test_partials_and_restricted_ranks() -> None:
    report = bnconform.check(functools.partial(torch.nn.BatchNorm1d, affine=True), ranks=[2, 3])
    assert report.ok, report.explain()
    with pytest.raises(UsageError, match=r"ranks \[6\]"):
        bnconform.check(torch.nn.BatchNorm1d, ranks=[6])


def test_import_bnconform_loads_no_torch_and_exports_only_the_api() -> None:
    code = "import sys, bnconform; print('torch' in sys.modules, sorted(bnconform.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ("False ['Report', 'Waiver', '__version__', 'assert_conforms', 'check', "
                                  "'run_check']")
    assert (Path(bnconform.__file__).parent / "py.typed").is_file()


def test_a_model_given_to_check_is_refused_with_a_pointer_to_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on the command line: a whole model is not a norm layer with a broken forward."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "sample_project"))
    with pytest.raises(UsageError, match=r"^tinynet.models:small_resnet is a model, not a normalization layer: "
                                         r"it contains 5 normalization layers .*`bnconform scan tinynet"):
        bnconform.check("tinynet.models:small_resnet")


def test_an_unknown_profile_is_refused_as_the_cli_refuses_it() -> None:
    with pytest.raises(UsageError, match=r"^--profile 'fast' is not one of default, thorough$"):
        bnconform.check("torch.nn:BatchNorm2d", profile="fast")


TOKEN_NORM = '''
import torch


class TokenNorm(torch.nn.Module):
    """(N, L, C) tokens normalized per C by an inner BatchNorm1d; its width is `width`."""

    def __init__(self, width):
        super().__init__()
        self.inner = torch.nn.BatchNorm1d(width)

    def forward(self, x):
        return self.inner(x.reshape(-1, x.shape[-1])).reshape(x.shape)
'''


def test_a_thin_wrapper_around_one_norm_layer_is_checked_as_a_layer_not_refused_as_a_model(tmp_path: Path) -> None:
    path = tmp_path / "tokens.py"
    path.write_text(TOKEN_NORM)
    report = bnconform.check(f"{path}:TokenNorm", init={"width": 5}, ranks=[3])
    assert [f.code for f in report.findings] == ["forward-failed"]
    assert "running_mean should contain" in report.findings[0].message


def test_a_width_no_known_argument_takes_is_not_called_ignored(tmp_path: Path) -> None:
    """`width` is pinned by --init and honoured; bnconform cannot build another width, so it says nothing."""
    path = tmp_path / "tokens.py"
    path.write_text(TOKEN_NORM)
    report = bnconform.check(f"{path}:TokenNorm", init={"width": 5})
    assert report.domain["channels"]["honoured"] is True
    assert report.domain["channels"]["rejected"] == {}
