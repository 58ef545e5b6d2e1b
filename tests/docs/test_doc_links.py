"""Relative links in README.md and the guides resolve: the file exists and its #anchor is a heading there.

GitHub renders a broken link or anchor silently (the reader lands on the top of the page, or a 404), so a
renamed heading or moved file would go unnoticed without this check. Also the repository paths that README
names in backticks (`benchmarks/embed.py`, `configs/pretrain/demo.yaml`, ...) exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    ROOT / "datasets" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
FENCE = re.compile(r"```.*?```", re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"`((?:benchmarks|configs|docs|datasets|notebooks)/[\w./-]+\.(?:py|yaml|md|png|sh|ipynb))`")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation other than '-' and '_' dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading id of a Markdown file (repeats get -1, -2 ... as on GitHub), plus explicit <a id/name>."""
    text = FENCE.sub("", path.read_text())
    seen: dict[str, int] = {}
    out: set[str] = set()
    for heading in re.findall(r"^#+ (.*)$", text, re.M):
        slug = github_anchor(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out | set(re.findall(r'<a (?:name|id)="([^"]+)"', text))


def broken_links(doc: Path) -> list[str]:
    """The relative links of one Markdown file whose target file or anchor does not exist."""
    bad = []
    for link in LINK.findall(FENCE.sub("", doc.read_text())):
        if re.match(r"[a-z]+:", link):  # http:, https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        path = (doc.parent / target) if target else doc
        if not path.exists():
            bad.append(f"{link} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            bad.append(f"{link} (no heading #{anchor} in {path.name})")
    return bad


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(doc: Path) -> None:
    assert broken_links(doc) == []


def test_repository_paths_named_in_readme_exist() -> None:
    names = set(REPO_PATH.findall((ROOT / "README.md").read_text()))
    assert len(names) > 10
    assert sorted(n for n in names if not (ROOT / n).exists()) == []


def test_checker_reports_a_missing_file_and_a_renamed_heading(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text("# Guide\n\n## Why short runs sit at ln K\n")
    doc = tmp_path / "README.md"
    doc.write_text(
        "[ok](guide.md#why-short-runs-sit-at-ln-k) [gone](nope.md) [renamed](guide.md#why-short-runs-stall)\n"
        "```\n[in a code block](ignored.md)\n```\n"
    )
    assert [b.split(" ")[0] for b in broken_links(doc)] == ["nope.md", "guide.md#why-short-runs-stall"]
