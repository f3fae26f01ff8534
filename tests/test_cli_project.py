"""`bnconform check A B ...`: one folder per target, an index, a bad target reported and the rest
checked; GitHub annotations on the class definition."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_several_targets_get_folders_an_index_and_annotations(tmp_path: Path) -> None:
    env = {**os.environ, "GITHUB_WORKSPACE": str(ROOT)}
    env.pop("GITHUB_ACTIONS", None)
    args = ["check", "bnconform.examples.tutorial:BatchNorm", "torch.nn:BatchNorm2e", "--format", "json",
            "--output", str(tmp_path), "--annotate", "github", "--no-config"]
    done = subprocess.run([sys.executable, "-m", "bnconform", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    assert done.returncode == 2, done.stderr  # a bad target is a usage error; the other was still checked
    assert "bnconform: error: torch.nn:BatchNorm2e: torch.nn has no attribute 'BatchNorm2e'" in done.stderr
    index = json.loads((tmp_path / "index.json").read_text())
    assert [(t["target"], t["verdict"]) for t in index["targets"]] == [
        ("bnconform.examples.tutorial:BatchNorm", "fail"), ("torch.nn:BatchNorm2e", "error")]
    assert (tmp_path / "bnconform.examples.tutorial_BatchNorm" / "bnconform-report.json").is_file()
    annotations = [line for line in done.stdout.splitlines() if line.startswith("::")]
    assert ("::error title=bnconform (momentum-inverted),file=bnconform/examples/tutorial.py,line=21::"
            "bnconform.examples.tutorial:BatchNorm: ") in "\n".join(annotations)
    assert all(line.startswith(("::error ", "::warning ", "::notice ")) for line in annotations)
