"""The broken-BatchNorm corpus: each module triggers its own finding code and nothing unrelated.

Every module in tests/corpus/ is the correct reference with one bug. A case passes when
its expected code is among the reported findings and no other ERROR-level code fires,
except the few listed in `also`, each of which the bug really causes (see the comments).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

CORPUS = Path(__file__).parent / "corpus"
CORRECT = {"__init__", "reference", "keras_reference"}


class CorpusCase(NamedTuple):
    module: str  # tests.corpus.<module>:BatchNorm
    expected_code: str
    spec: str = "pytorch"
    init: Mapping[str, Any] | None = None  # constructor keywords (--init)
    also: frozenset[str] = frozenset()  # ERROR codes the bug legitimately causes too


CASES: list[CorpusCase] = [
    CorpusCase("construct_failed", "construct-failed"),
    CorpusCase("forward_failed", "forward-failed"),
    CorpusCase("forward_failed_nan", "forward-failed"),
    CorpusCase("input_rank_unsupported", "input-rank-unsupported"),
    CorpusCase("batch_size_one", "batch-size-one"),
    CorpusCase("output_mismatch", "output-mismatch"),
    CorpusCase("reduction_axes_batch_only", "reduction-axes"),
    CorpusCase("reduction_axes_per_sample", "reduction-axes"),
    CorpusCase("norm_variance_estimator", "norm-variance-estimator"),
    CorpusCase("eps_placement", "eps-placement"),
    CorpusCase("eps_ignored", "eps-ignored"),
    CorpusCase("eps_default", "eps-default"),
    CorpusCase("unstable_variance", "unstable-variance"),
    CorpusCase("train_uses_running_stats_previous", "train-uses-running-stats"),
    CorpusCase("train_uses_running_stats_updated", "train-uses-running-stats"),
    CorpusCase("affine_apply_order", "affine-apply"),
    CorpusCase("affine_apply_product", "affine-apply"),
    CorpusCase("affine_init_random", "affine-init"),
    CorpusCase("affine_init_half", "affine-init"),
    CorpusCase("affine_params_buffers", "affine-params"),
    CorpusCase("affine_params_plain", "affine-params"),
    CorpusCase("momentum_inverted_default", "momentum-inverted"),
    CorpusCase("momentum_inverted_formula", "momentum-inverted"),
    CorpusCase("momentum_ignored", "momentum-ignored"),
    CorpusCase("momentum_default", "momentum-default"),
    CorpusCase("running_var_estimator", "running-var-estimator"),
    CorpusCase("running_stats_init", "running-stats-init"),
    CorpusCase("running_stats_missing", "running-stats-missing"),
    CorpusCase("running_stats_not_updated", "running-stats-not-updated"),
    CorpusCase("running_stats_shape", "running-stats-shape"),
    CorpusCase("running_stats_not_buffers", "running-stats-not-buffers"),
    CorpusCase("running_stats_grad", "running-stats-grad"),
    CorpusCase("num_batches_tracked_frozen", "num-batches-tracked"),
    CorpusCase("num_batches_tracked_double", "num-batches-tracked"),
    CorpusCase("eval_uses_batch_stats", "eval-uses-batch-stats"),
    CorpusCase("eval_updates_running_stats", "eval-updates-running-stats"),
    CorpusCase("mode_follows_grad", "mode-follows-grad"),
    CorpusCase("grad_mismatch", "grad-mismatch"),
    CorpusCase("state_dict_keys", "state-dict"),
    CorpusCase("state_dict_python_counter", "state-dict"),
    CorpusCase("state_dict_load", "state-dict"),
    CorpusCase("keras_momentum_inverted", "momentum-inverted", spec="keras"),
]


def _describe(result: Mapping[str, Any]) -> str:
    lines = [f"{f['severity']:7} {f['code']}: {f['message']}" for f in result["findings"]]
    lines += [
        f"{c['status']:7} {c['id']}: {c['reason']}"
        for c in result["checks"]
        if c["status"] in ("errored", "blocked")
    ]
    return "\n".join(lines) or "(no findings)"


@pytest.fixture(scope="module")
def run_check():
    from bnconform.api import run_check

    return run_check


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.module)
def test_corpus_case(case: CorpusCase, run_check) -> None:
    init = dict(case.init) if case.init else None
    result = run_check(f"tests.corpus.{case.module}:BatchNorm", spec=case.spec, init=init, seed=0)
    codes = {f["code"] for f in result["findings"]}
    # Consequences (diagnosis.py) of the expected code, of `also`, or of the expected code's own root are related.
    roots = {f.get("caused_by") for f in result["findings"] if f["code"] == case.expected_code} - {None}
    explained = {case.expected_code, *case.also, *roots}
    errors = {f["code"] for f in result["findings"] if f["severity"] == "error" and f.get("caused_by") not in explained}
    assert case.expected_code in codes, f"{case.expected_code} not reported:\n{_describe(result)}"
    unrelated = errors - {case.expected_code} - case.also
    assert not unrelated, f"unrelated errors {sorted(unrelated)}:\n{_describe(result)}"


def test_every_corpus_module_has_a_case() -> None:
    modules = {p.stem for p in CORPUS.glob("*.py")} - CORRECT
    assert modules == {c.module for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.module)
def test_docstring_names_the_expected_code(case: CorpusCase) -> None:
    # The module docstring is the corpus's documentation; it must agree with this table.
    text = (CORPUS / f"{case.module}.py").read_text()
    match = re.search(r'Expected finding under the "([\w-]+)" spec: ([a-z-]+)\.', text)
    assert match is not None and match.groups() == (case.spec, case.expected_code)


def test_expected_codes_are_registered() -> None:
    from bnconform import registry  # a broken import fails here, never skips
    unknown = {c.expected_code for c in CASES} - set(registry.known_codes())
    assert not unknown, f"corpus expects codes no check registers: {sorted(unknown)}"
