"""The built-in `frozen` spec: statistics fixed and used in both modes, gamma/beta fixed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnconform.api import run_check
from bnconform.errors import SpecError
from bnconform.spec import load_spec


def test_frozen_spec_keys() -> None:
    spec = load_spec("frozen")
    assert (spec.train_uses, spec.eval_uses, spec.affine_trainable) == ("running", "running", False)
    assert spec.new_weight(spec.momentum_default) == 0.0 and spec.batch_of_one == "allowed"
    assert (load_spec("pytorch").train_uses, load_spec("pytorch").affine_trainable) == ("batch", True)


def test_the_new_keys_are_validated_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[spec]\nextends = "frozen"\nname = "x"\n\n[training]\nuses = "sometimes"\n')
    with pytest.raises(SpecError, match=r"bad.toml:6: \[training\] uses: 'sometimes' is not one of"):
        load_spec(str(path))


def test_a_training_batchnorm_is_not_frozen() -> None:
    result = run_check("torch.nn:BatchNorm2d", spec="frozen")
    codes = {f["code"] for f in result["findings"]}
    assert "train-uses-running-stats" in codes and result["summary"]["verdict"] == "fail"
