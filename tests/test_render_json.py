"""Canonical JSON: strict output (no NaN), schema-checked loading, idempotent re-render."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bnconform.errors import UsageError
from bnconform.render import json as json_render

DATA = Path(__file__).parent / "data"
SAMPLES = sorted(DATA.glob("sample_result*.json"))


def test_samples_exist() -> None:
    assert {p.name for p in SAMPLES} >= {
        "sample_result_clean.json", "sample_result_failing.json", "sample_result_many.json"}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_rerender_is_idempotent(path: Path) -> None:
    result = json_render.load(path)
    text = json_render.render(result)
    assert json.loads(text) == result
    assert json_render.render(json.loads(text)) == text


def test_non_finite_floats_become_strings() -> None:
    result = {"schema": "bnconform.result/1",
              "plots": {"x": [1.0, math.nan, math.inf, -math.inf]}, "t": (1, 2)}
    text = json_render.render(result)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["plots"]["x"] == [1.0, "nan", "inf", "-inf"]
    assert json.loads(text)["t"] == [1, 2]


def test_key_order_is_kept() -> None:
    text = json_render.render({"schema": "bnconform.result/1", "b": 1, "a": 2})
    assert text.index('"b"') < text.index('"a"')


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("not json", "not a bnconform result: invalid JSON"),
        ("[1, 2]", "not a bnconform result"),
        ('{"schema": "other/1"}', "not a bnconform result"),
        ('{"no": "schema"}', "not a bnconform result"),
        ('{"schema": "bnconform.result/2"}', "this bnconform reads 'bnconform.result/1'"),
    ],
)
def test_load_rejects_foreign_files(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(UsageError) as info:
        json_render.load(path)
    message = str(info.value)
    assert needle in message and str(path) in message
    assert "\n" not in message


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        json_render.load(tmp_path / "absent.json")
