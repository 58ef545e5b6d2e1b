"""The `geodino ...` commands of README.md and docs/*.md, extracted from their fenced code blocks."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_commands() -> list[tuple[str, str]]:
    """(file name, command line) for every `geodino ...` line of a fenced block (continuations joined, comments
    dropped); `srun geodino ...` counts as its geodino command."""
    out = []
    for path in doc_files():
        for block in FENCE.findall(path.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words[:1] == ["srun"]:
                    words = words[1:]
                if words[:1] == ["geodino"]:
                    out.append((path.name, shlex.join(words)))
    return out


def named_yaml_blocks() -> dict[str, str]:
    """{file name: text} of the yaml blocks whose first line names the file (`# my_dense.yaml`)."""
    out = {}
    for path in doc_files():
        for block in FENCE.findall(path.read_text()):
            m = re.match(r"# ([\w.-]+\.ya?ml)\s*\n", block)
            if m:
                out[m.group(1)] = block
    return out
