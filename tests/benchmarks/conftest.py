"""Set-ups shared by the tests of the benchmark scripts (benchmarks/ is no package: its scripts import each other by
bare name, as they do when run from that folder)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def bench_module(name: str) -> ModuleType:
    """The benchmark script benchmarks/`name`.py imported as a module (benchmarks/ on sys.path only while it loads)."""
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))
