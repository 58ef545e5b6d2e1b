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
