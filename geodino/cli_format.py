"""The layout of every `geodino ... --help` (`HelpFormatter`, the formatter class of `cli.Parser`)."""

from __future__ import annotations

import argparse
import textwrap


class HelpFormatter(argparse.HelpFormatter):
    """geodino's `--help` layout, for every command. A description is wrapped to the terminal, but a paragraph with
    indented lines (the `config keys (defaults):` list) is kept as written: the raw formatter that list needed left
    descriptions on one line of up to 224 columns. Lines break at spaces only: `--no-local-cls-norm` and
    `near-duplicates` were cut at their hyphens. A list option whose metavar spells the whole value (`COL ROW W H`,
    `X,Y`) is shown once, not as `COL ROW W H [COL ROW W H ...]` (which read as "several windows")."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line[:1].isspace() for line in lines[1:]):  # a list, laid out by hand
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(self._wrap(paragraph, width, indent))
        return "\n\n".join(paragraphs)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)

    def _wrap(self, text: str, width: int, indent: str) -> str:
        text = " ".join(text.split())
        return textwrap.fill(
            text, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False
        )

    def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
        metavar = action.metavar
        if action.nargs == "+" and isinstance(metavar, str) and (" " in metavar or "," in metavar):
            return metavar  # the metavar is the whole value: `--window COL ROW W H`, `--point X,Y`
        return super()._format_args(action, default_metavar)
