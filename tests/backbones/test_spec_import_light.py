"""`import geodino.backbones.spec` (the spec parser: the CLI's checks, `geodino.models.info`) imported torch through
the package's `__init__`, which imported every module: the package's names now load on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_the_spec_parser_imports_no_torch():
    code = (
        "import sys; from geodino.backbones.spec import parse_spec; from geodino.backbones import parse_spec as p; "
        "print(p is parse_spec, p('arch:vit_tiny?seed=0'), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "True ('arch', 'vit_tiny', {'seed': '0'}) False"


def test_the_package_names_still_resolve_and_are_listed():
    import geodino.backbones as backbones
    from geodino.backbones.frozen import FrozenBackbone
    from geodino.backbones.load import load_backbone

    assert backbones.load_backbone is load_backbone and backbones.FrozenBackbone is FrozenBackbone
    assert set(backbones.__all__) <= set(dir(backbones))
    assert all(getattr(backbones, name) is not None for name in backbones.__all__)
    with pytest.raises(AttributeError, match=r"module 'geodino.backbones' has no attribute 'load_backbon'"):
        backbones.load_backbon  # noqa: B018
