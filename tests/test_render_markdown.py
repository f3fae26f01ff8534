"""Markdown report: contents, table integrity under hostile text, brevity of clean runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bnconform.render import markdown, terminal

DATA = Path(__file__).parent / "data"


def sample(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"sample_result_{name}.json").read_text())


def table_blocks(text: str) -> list[list[str]]:
    """Consecutive lines starting with '|' (GitHub tables)."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return blocks


def unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def assert_tables_intact(text: str) -> None:
    blocks = table_blocks(text)
    assert blocks
    for block in blocks:
        assert re.fullmatch(r"\|[-|: ]+\|", block[1]), block[1]
        columns = unescaped_pipes(block[0])
        assert all(unescaped_pipes(line) == columns for line in block), block


def test_failing_report_contents() -> None:
    text = markdown.render(sample("failing"))
    assert text.startswith("# ❌ bnconform: FAIL: bnconform.examples.tutorial:TutorialBatchNorm2d")
    for field in ("**Spec** pytorch", "**Devices** cpu", "**Seed** 0", "**torch** 2.13.0",
                  "**bnconform** 0.1.0"):
        assert field in text.split("## Run", 1)[1]  # run metadata comes last
    assert "## Fingerprint vs spec" in text
    assert "| property" in text and "expected" in text and "verdict" in text
    assert ("Closest shipped convention: behaves like the keras spec except running-var-estimator."
            in text)
    # First screen: verdict, the root cause to fix first and its fix, before any section.
    first_screen = text.split("## ", 1)[0]
    assert "> **Fix first:** **running-stats-shape**: running_mean has shape" in first_screen
    assert "> **How to fix:** Register running_mean" in first_screen
    assert text.index("## Findings (4)") < text.index("## Fingerprint vs spec") < text.index("## Run")
    positions = [text.index(f"### {n}. {code} (") for n, code in enumerate(
        ("running-stats-shape", "momentum-inverted", "running-var-estimator", "input-rank-unsupported"), 1)]
    assert positions == sorted(positions)  # errors before warnings, stable within a severity
    assert "- **Expected:** new-batch weight 0.1" in text
    assert "- **Observed:** new-batch weight 0.9" in text
    assert "**Why it matters:**" in text and "**How to fix:**" in text
    assert "```python\nimport torch\n" in text
    waived = text.index("## Waived findings (1)")
    assert text.index("state-dict-keys", waived) > waived
    assert "### 5." not in text  # waived ones are not listed as findings
    assert "blocked by running-stats-shape (failed)" in text
    assert "## Checks (34)" in text
    assert "<details><summary>22 passed checks</summary>" in text
    assert_tables_intact(text)


def test_differing_fingerprint_rows_stand_out() -> None:
    text = markdown.render(sample("failing"))
    assert "4 of 9 properties differ from the spec (marked ❌)." in text
    rows = [line for line in text.splitlines() if line.startswith("| ❌")]
    assert len(rows) == 4 and all("**differs**" in row for row in rows)
    assert any("**0.9**" in row for row in rows)
    same = [line for line in text.splitlines() if "| matches" in line]
    assert same and not any("❌" in line or "**" in line for line in same)


@pytest.mark.parametrize(("verdicts", "note"), [
    (["unknown", "unknown"], "No property could be observed."),
    (["matches", "unknown", "unknown"], "Every observed property matches the spec; 2 of 3 could not be observed."),
    (["matches", "matches"], "Every property matches the spec."),
    (["differs", "unknown"], "1 of 2 properties differ from the spec (marked ❌)."),
])
def test_the_fingerprint_note_claims_a_match_only_for_what_was_observed(verdicts: list[str], note: str) -> None:
    result = sample("failing")
    rows = [{"key": f"p{i}", "label": f"property {i}", "expected": "x", "observed": "y", "verdict": v}
            for i, v in enumerate(verdicts)]
    result["fingerprint"] = {**result["fingerprint"], "rows": rows}
    text = markdown.render(result)
    assert text.split("## Fingerprint vs spec\n\n", 1)[1].startswith(note + "\n\n")


def test_passed_checks_are_folded() -> None:
    text = markdown.render(sample("failing"))
    folded = text[text.index("<details><summary>22 passed"):text.index("</details>")]
    visible = text[text.index("## Checks"):text.index("<details><summary>22 passed")]
    assert "| failed" in visible and "| passed" not in visible
    assert folded.count("\n|") == 22 + 2  # header, rule, one row per passed check


def test_clean_report_is_short() -> None:
    text = markdown.render(sample("clean"))
    assert "PASS" in text and "No findings." in text
    assert "Closest shipped convention: behaves exactly like the pytorch spec." in text
    assert "Waived" not in text
    assert len(text.encode()) < 8_000


def test_cells_escape_pipes_newlines_and_html() -> None:
    result = sample("failing")
    result["fingerprint"]["rows"][0]["observed"] = "a | b\nc <script>x</script> [l](http://e)"
    text = markdown.render(result)
    assert "a \\| b c &lt;script&gt;x&lt;/script&gt; \\[l\\](http://e)" in text
    assert_tables_intact(text)


def test_repro_fence_outlasts_backticks() -> None:
    block = markdown.code_block("x = 1\n```\n# still code\n````")
    assert block.startswith("`````python\n") and block.endswith("\n`````")


def test_terminal_summary() -> None:
    result = sample("failing")
    result["findings"][0]["message"] = "\x1b[2J cleared " + "m" * 200
    text = terminal.render(result)
    first = text.splitlines()[0]
    assert first == ("bnconform FAIL: bnconform.examples.tutorial:TutorialBatchNorm2d "
                     "vs spec pytorch")
    assert "\x1b" not in text
    assert "momentum-inverted" in text and "state-dict-keys" not in text
    assert "3 errors, 1 warning, 0 info, 1 waived; checks: 22 passed, 5 failed" in text
    assert max(len(line) for line in text.splitlines()) < 140
    assert "…" in text


def test_terminal_clean_has_no_table() -> None:
    text = terminal.render(sample("clean"))
    assert text.startswith("bnconform PASS: torch.nn:BatchNorm2d vs spec pytorch")
    assert "severity" not in text


def with_consequence(result: dict[str, Any]) -> dict[str, Any]:
    """The failing sample with input-rank-unsupported explained by running-stats-shape (diagnosis order)."""
    findings = result["findings"]
    root = next(f for f in findings if f["code"] == "running-stats-shape")
    consequence = next(f for f in findings if f["code"] == "input-rank-unsupported")
    consequence["caused_by"] = "running-stats-shape"
    findings.remove(root)
    findings.insert(0, root)
    return result


def test_fix_first_names_the_root_and_what_it_also_explains_exactly() -> None:
    text = markdown.render(with_consequence(sample("failing")))
    assert "\n## Findings (4)\n" in text  # 3 roots + 1 consequence (state-dict-keys is waived)
    block = text[text.index("> **Fix first:**"):text.index("\n\nClosest shipped")]
    assert block.splitlines() == [
        "> **Fix first:** **running-stats-shape**: running_mean has shape (1, 3, 1, 1); the spec stores (C,)",
        ">",
        "> **How to fix:** Register running_mean/running_var as torch.zeros(num_features) / "
        "torch.ones(num_features) and reshape with .view(1, -1, 1, 1) only inside forward.",
        ">",
        "> Also explains: input-rank-unsupported.",
    ]


def test_consequences_are_listed_under_their_cause() -> None:
    text = markdown.render(with_consequence(sample("failing")))
    section = text[text.index("**Consequences of running-stats-shape**"):]
    lines = section.splitlines()
    assert lines[2].startswith("- **input-rank-unsupported** (") and lines[3].startswith("  - expected ")
    assert text.count("### ") == 3  # three roots numbered; the consequence is not a numbered finding


def test_the_header_marks_pass_and_fail() -> None:
    assert markdown.render(sample("clean")).startswith("# ✅ bnconform: PASS: ")
    assert markdown.render(sample("failing")).startswith("# ❌ bnconform: FAIL: ")
    inconclusive = sample("clean")
    inconclusive["summary"]["verdict"] = "inconclusive"
    assert markdown.render(inconclusive).startswith("# ❌ bnconform: INCONCLUSIVE: ")


def test_a_finding_shows_its_device_only_when_it_has_one() -> None:
    result = sample("failing")
    text = markdown.render(result)
    first = text[text.index("### 1."):text.index("### 2.")]
    assert "- **Device:** cpu" in first
    for finding in result["findings"]:
        finding["device"] = ""
    text = markdown.render(result)
    assert "- **Device:**" not in text[text.index("### 1."):text.index("### 2.")]


def test_the_run_section_lists_settings_but_not_verdict_or_target() -> None:
    text = markdown.render(sample("failing"))
    run = text[text.index("## Run"):].split("\n## ")[0]
    assert "**Verdict**" not in run and "**Target**" not in run and "**Spec**" in run
    assert run.rstrip("\n").endswith("\n\nBuilt as `TutorialBatchNorm2d(num_features=3, eps=1e-05, momentum=0.1)`")


def two_groups(result: dict[str, Any]) -> dict[str, Any]:
    """running-stats-shape explains one finding, momentum-inverted two."""
    findings = result["findings"]
    by_code = {f["code"]: f for f in findings}
    by_code["state-dict-keys"]["waived"] = False
    by_code["input-rank-unsupported"]["caused_by"] = "running-stats-shape"
    by_code["running-var-estimator"]["caused_by"] = "momentum-inverted"
    by_code["state-dict-keys"]["caused_by"] = "momentum-inverted"
    order = ["running-stats-shape", "momentum-inverted", "input-rank-unsupported", "running-var-estimator",
             "state-dict-keys"]
    result["findings"] = [by_code[code] for code in order]
    return result


def test_the_findings_heading_counts_roots_and_consequences() -> None:
    text = markdown.render(two_groups(sample("failing")))
    assert "\n## Findings (5)\n" in text  # 2 roots + 1 + 2 consequences
    assert text.count("\n### ") == 2


def test_an_impact_is_shown_with_its_text_or_as_a_relative_error() -> None:
    result = sample("failing")
    first = result["findings"][1]  # running-stats-shape, the first root
    first["details"] = {"impact": 0.25, "impact_text": "alone, this makes eval outputs differ by 25%"}
    text = markdown.render(result)
    assert "- **Impact:** alone, this makes eval outputs differ by 25%\n" in text
    first["details"] = {"impact": 0.25}
    assert "- **Impact:** relative output error 0.25\n" in markdown.render(result)
    first["details"] = {"impact": True}
    assert "- **Impact:**" not in markdown.render(result)


def test_table_cells_keep_numbers_as_written() -> None:
    result = sample("failing")
    result["fingerprint"]["rows"][2]["expected"] = "0.10"
    text = markdown.render(result)
    assert "| 0.10 " in text


def test_a_differing_fingerprint_row_has_its_mark_plain_and_its_label_bold() -> None:
    text = markdown.render(sample("failing"))
    rows = [line for line in text.splitlines() if line.startswith("| ❌")]
    assert len(rows) == 4  # the sample's four differing rows
    assert all(row.split("|")[2].strip().startswith("**") for row in rows)


def test_fingerprint_rows_show_their_label_not_their_key() -> None:
    result = sample("failing")
    row = result["fingerprint"]["rows"][0]
    assert row["label"] != row["key"]
    text = markdown.render(result)
    table_text = text[text.index("## Fingerprint vs spec"):]
    assert f"| {row['label']}" in table_text or f"| **{row['label']}**" in table_text
    assert f"| {row['key']} " not in table_text


def test_a_fence_one_longer_than_three_backticks_inside() -> None:
    assert markdown.code_block("a\n```\nb").startswith("````python\n")
    assert markdown.code_block("plain").startswith("```python\n")


def test_a_numeric_column_is_not_reformatted() -> None:
    text = markdown.table(["tolerance"], [["0.10"], ["1e-05"], ["100"]])
    assert text.splitlines()[2:] == ["| 0.10        |", "| 1e-05       |", "| 100         |"]
