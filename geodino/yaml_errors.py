"""Where and what of a YAML file that does not parse, on one line: config files and sensor YAMLs say it alike."""

from __future__ import annotations

from geodino.errors import one_line


def yaml_problem(exc: Exception) -> str:
    """`" at line L, column C: problem (context started at line L2, column C2)"` from yaml's marks (1-based), or
    `": whole text"` (folded onto one line) for an error without a mark. yaml's own first line is only the
    construct it was in ("while parsing a flow sequence"), which says neither where nor what went wrong."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    if mark is None or not problem:
        return f": {one_line(exc)}"
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and start is not None:
        problem += f" ({context} started at line {start.line + 1}, column {start.column + 1})"
    elif context:
        problem += f" ({context})"
    return f" at line {mark.line + 1}, column {mark.column + 1}: {problem}"
