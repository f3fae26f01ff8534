"""A search's minimal failing input depends on the class, the spec and the seed only: not on the
modules the process imported before it (Hypothesis draws literals from every local module)."""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis.internal.conjecture import providers  # the pool the fix empties

from bnconform.api import run_check
from bnconform.search_determinism import without_local_constants
from tests.wild.affine_mistakes import GammaTwiceBatchNorm

# Literals a user's project might hold; 0.5 and 2.0 are gammas the output search shrinks to.
LITERALS = "VALUES = [0.37, 1.23, 4.56, -2.5, 3.3, -4.1, 0.77, 2.2, 1.9, -0.6, 0.15, 0.5, 7, 11]\n"
_names = itertools.count()


@pytest.fixture
def import_local_literals(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
) -> Callable[[], None]:
    """Imports a fresh module of literals from a folder Hypothesis counts as the user's own code."""

    def load() -> None:
        folder = tmp_path_factory.mktemp("project")
        name = f"project_constants_{next(_names)}"
        (folder / f"{name}.py").write_text(LITERALS)
        monkeypatch.syspath_prepend(str(folder))
        importlib.import_module(name)

    return load


def minimal_input(result: dict[str, Any]) -> tuple[str, str]:
    (finding,) = [f for f in result["findings"] if f["code"] == "output-mismatch"]
    return finding["message"], finding["repro"]


def test_the_output_search_shrinks_to_the_same_input_after_a_module_of_literals_is_imported(
    import_local_literals: Callable[[], None],
) -> None:
    before = minimal_input(run_check(GammaTwiceBatchNorm))
    import_local_literals()
    assert minimal_input(run_check(GammaTwiceBatchNorm)) == before


def test_during_a_search_hypothesis_sees_no_local_literals_and_afterwards_it_sees_them_again(
    import_local_literals: Callable[[], None],
) -> None:
    import_local_literals()
    assert 4.56 in providers._get_local_constants().floats
    with without_local_constants():
        pool = providers._get_local_constants()
        assert (len(pool.floats), len(pool.integers)) == (0, 0)
    assert 4.56 in providers._get_local_constants().floats


def test_a_hypothesis_without_the_pool_leaves_the_search_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(providers, "CONSTANTS_CACHE")
    collect = providers._get_local_constants
    with without_local_constants():
        assert providers._get_local_constants is collect
