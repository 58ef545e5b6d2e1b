"""`dir(geodino)` lists the lazily imported `pretrain` / `distill` of `__all__` (tab completion in a notebook showed
only the error classes), and listing them imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys


def test_dir_lists_every_public_name_without_importing_torch():
    code = (
        "import sys, geodino; names = dir(geodino); "
        "print(sorted(set(geodino.__all__) - set(names)), 'torch' in sys.modules, callable(geodino.pretrain))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] False True"


def test_lazy_subpackages_list_their_public_names_without_importing_torch():
    """`dir(geodino.embed)` showed none of `embed_raster`, `pca_map` ... (only `Any` and `annotations`): the lazy
    names of `__all__` were missing from completion in geodino.embed, geodino.eval and geodino.models."""
    code = (
        "import sys, geodino.embed as e, geodino.eval as v, geodino.models as m; "
        "print([sorted(set(p.__all__) - set(dir(p))) for p in (e, v, m)], 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[[], [], []] False"


def test_every_public_name_resolves_and_an_unknown_one_says_which_module():
    import pytest

    import geodino.embed
    import geodino.eval
    import geodino.models

    for pkg in (geodino.embed, geodino.eval, geodino.models):
        assert all(callable(getattr(pkg, n)) or n == "ARCHS" for n in pkg.__all__), pkg.__name__
        with pytest.raises(AttributeError, match=rf"module '{pkg.__name__}' has no attribute 'embed_rastr'"):
            pkg.embed_rastr  # noqa: B018


def test_subpackages_are_attributes_of_the_package_imported_on_first_use():
    """`import geodino; geodino.backbones.load_backbone(...)` (docs/pretraining.md) raised AttributeError unless
    `geodino.backbones` had been imported: the subpackages load on first access, not with the package."""
    code = (
        "import sys, geodino; before = 'geodino.backbones' in sys.modules or 'torch' in sys.modules; "
        "print(before, set(geodino.SUBPACKAGES) <= set(dir(geodino)), geodino.backbones.load_backbone.__name__, "
        "'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False True load_backbone True"
