"""Spec numbers are finite and in range, ranks and axes are ones the probes support (issue 9):
anything else is a SpecError naming file:line, which the CLI prints as one line with exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bnconform.errors import SpecError
from bnconform.spec import load_spec

HEAD = '[spec]\nextends = "pytorch"\nname = "bad"\n\n'  # lines 1-4


@pytest.mark.parametrize(("body", "line", "pieces"), [
    ("[normalization]\neps = nan\n", 6, ["[normalization] eps", "not a finite number"]),
    ("[normalization]\neps = inf\n", 6, ["[normalization] eps", "not a finite number"]),
    ("[normalization]\neps = 0.0\n", 6, ["[normalization] eps", "> 0"]),
    ("[tolerance.float32]\nrtol = nan\natol = 1e-6\n", 6, ["[tolerance.float32] rtol", "not a finite number"]),
    ("[tolerance.float64]\nrtol = 1e-9\natol = inf\n", 7, ["[tolerance.float64] atol", "not a finite number"]),
    ("[layout]\nranks = [2, 3, 4, 5, 6]\n"
     "reduction_axes = { 2 = [0], 3 = [0, 2], 4 = [0, 2, 3], 5 = [0, 2, 3, 4], 6 = [0, 2, 3, 4, 5] }\n", 6,
     ["[layout] ranks", "rank 6 is not supported", "2 to 5"]),
    ("[layout]\nreduction_axes = { 2 = [0], 3 = [2], 4 = [0, 2, 3], 5 = [0, 2, 3, 4] }\n", 6,
     ["[layout] reduction_axes", "rank 3", "do not include the batch axis 0"]),
])
def test_out_of_range_spec_values_name_file_and_line(tmp_path: Path, body: str, line: int,
                                                     pieces: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(HEAD + body, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    for piece in pieces:
        assert piece in message, message


def test_the_cli_prints_a_nan_eps_as_one_line_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(HEAD + "[normalization]\neps = nan\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "bnconform", "check", "torch.nn:BatchNorm2d", "--spec", str(path),
                           "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and f"{path}:6:" in done.stderr, done.stderr
