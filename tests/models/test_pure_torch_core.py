"""DESIGN.md's pure-torch core: `geodino.models` and `geodino.losses` import only torch (no Lightning, GDAL,
rasterio, torchgeo, xarray, ...), so they are easy to test, reuse and read. Other libraries a converter or a command
needs (safetensors, timm, geodino.data's sensor registry) are imported inside the function that uses them."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import geodino

ROOT = Path(geodino.__file__).parent
CORE = ("models", "losses")
OWN = ("geodino.models", "geodino.losses", "geodino.errors", "geodino.lazy")
"""geodino modules the core may import at module level: itself, the error kinds and the package-names helper (both
standard library only)."""
CLI_ONLY = {"models/commands.py": {"geodino.config"}}
"""The `convert` / `info` argument parsers read their option names from the config schemas."""
HEAVY = ("lightning", "pytorch_lightning", "torchgeo", "rasterio", "osgeo", "xarray", "zarr", "transformers", "timm")


def _top_level_imports(path: Path) -> set[str]:
    """Absolute module names imported at module level (also inside try/except), not under `if TYPE_CHECKING:`."""
    names: set[str] = set()
    body = list(ast.parse(path.read_text()).body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.Try):
            body.extend(node.body + [s for h in node.handlers for s in h.body] + node.orelse + node.finalbody)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_core_modules_import_only_torch_at_module_level():
    """A module-level `import numpy` / `import rasterio` (or of geodino.data, .train, ...) in models/ or losses/
    would tie the core to them; the check reads the source, so it also covers modules no test imports."""
    bad = []
    for part in CORE:
        for path in sorted((ROOT / part).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for name in sorted(_top_level_imports(path)):
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "torch" or name.startswith(OWN):
                    continue
                if name in CLI_ONLY.get(rel, ()):
                    continue
                bad.append(f"{rel}: {name}")
    assert bad == []


def test_importing_every_core_module_loads_no_heavy_library():
    """What the modules pull in through geodino's own imports counts too: import them all in a clean process."""
    modules = sorted(
        m.name
        for part in CORE
        for m in pkgutil.walk_packages([str(ROOT / part)], prefix=f"geodino.{part}.")
        if not m.name.endswith(".commands")  # the CLI registration, checked above
    )
    assert "geodino.models.vit" in modules and "geodino.losses.gram" in modules
    code = (
        f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; "
        f"print(sorted(h for h in {HEAVY!r} if h in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
