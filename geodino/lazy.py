"""Package names that load on first use (PEP 562): one `__getattr__` / `__dir__` pair for every package that keeps
its import cheap (`geodino`, `geodino.backbones`, `.embed`, `.eval`, `.models`), so that each does not write its own."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, homes: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for `package`: each name of `homes` is imported from its module (the dotted path it
    maps to) on first access and kept in the package; a name whose home is `package.name` is that module itself (a
    subpackage). `__dir__` lists the package's names plus the lazy ones, for `dir()` and completion."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(home)
        value = module if home == f"{package}.{name}" else getattr(module, name)
        vars(sys.modules[package])[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(homes))

    return __getattr__, __dir__
