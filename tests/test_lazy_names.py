"""`geodino.lazy.lazy_names`, the one `__getattr__`/`__dir__` of the packages that load their names on first use:
a name comes from its module once and is kept, a subpackage is the module itself, an unknown name is the
AttributeError Python gives, and `dir()` lists the lazy names before any was loaded."""

from __future__ import annotations

import sys
import types

import pytest

from geodino.lazy import lazy_names


def test_names_load_once_from_their_homes_and_are_listed(monkeypatch):
    pkg = types.ModuleType("fakepkg")
    monkeypatch.setitem(sys.modules, "fakepkg", pkg)
    pkg.__getattr__, pkg.__dir__ = lazy_names("fakepkg", {"dumps": "json", "join": "os.path"})
    assert {"dumps", "join"} <= set(dir(pkg)) and "dumps" not in vars(pkg)
    import json

    assert pkg.dumps is json.dumps and vars(pkg)["dumps"] is json.dumps  # kept: the next access is a plain lookup
    assert pkg.join is sys.modules["os.path"].join
    with pytest.raises(AttributeError, match=r"^module 'fakepkg' has no attribute 'nosuch'$"):
        _ = pkg.nosuch


def test_a_subpackage_home_is_the_module_itself():
    import geodino

    assert geodino.eval is sys.modules["geodino.eval"] and "eval" in dir(geodino)
