"""The README is true: its example output is what the tool prints today, and every relative
link (and every path to a Markdown file) in README.md, DESIGN.md and specs/README.md exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "DESIGN.md", "specs/README.md")
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|^\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
MD_PATH = re.compile(r"`([\w./-]+/[\w.-]+\.md)`")  # a path to a Markdown file named in code font


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+)$", text, re.MULTILINE)}


def relative_links(doc: str) -> list[str]:
    text = re.sub(r"```.*?```", "", (REPO / doc).read_text(encoding="utf-8"), flags=re.DOTALL)
    found = [a or b for a, b in LINK.findall(text)]
    return [link for link in found if not re.match(r"[a-z][a-z0-9+.-]*:", link)]


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_resolves(doc: str) -> None:
    broken = []
    for link in relative_links(doc):
        target, _, anchor = link.partition("#")
        path = ((REPO / doc).parent / target).resolve() if target else REPO / doc
        if not path.exists() or REPO not in (path, *path.parents):
            broken.append(link)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(link)
    assert not broken, f"{doc}: links to nothing in the repository: {broken}"


@pytest.mark.parametrize("doc", DOCS)
def test_markdown_files_named_in_the_text_exist(doc: str) -> None:
    text = (REPO / doc).read_text(encoding="utf-8")
    missing = [p for p in MD_PATH.findall(text)
               if not (REPO / p).exists() and not ((REPO / doc).parent / p).exists()]
    assert not missing, f"{doc} names files that are not in the repository: {missing}"


def test_the_link_checker_catches_a_broken_link(tmp_path: Path) -> None:
    assert slug("Quick start") == "quick-start" and slug("`--fail-on` and waivers") == "--fail-on-and-waivers"
    assert "specs/README.md" in relative_links("README.md")


def test_readme_example_output_is_a_fresh_run() -> None:
    """Fails when the tool's output changed: run scripts/regenerate-readme-example.py."""
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "regenerate-readme-example.py"), "--check"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
