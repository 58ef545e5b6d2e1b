"""Every third-party module geodino imports comes from a distribution pyproject.toml declares.

A module that only arrives as another package's dependency (affine through rasterio, joblib through
scikit-learn) disappears the day that package drops it; declaring it pins what geodino itself relies on.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _declared() -> set[str]:
    """Normalised distribution names of pyproject's dependencies and optional dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return {_norm(re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0]) for spec in specs}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_tops(package: Path) -> dict[str, str]:
    """Top-level module name -> one file importing it, over every import statement (lazy ones included)."""
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared() -> None:
    """Map each imported top-level module to its installed distribution and require it in pyproject."""
    declared = _declared()
    dists = packages_distributions()
    undeclared = []
    for top, where in sorted(_imported_tops(ROOT / "geodino").items()):
        if top in sys.stdlib_module_names or top in ("geodino", "__future__"):
            continue
        owners = {_norm(d) for d in dists.get(top, [])}
        if not owners:
            continue  # not installed here: an optional extra's module (e.g. wandb); its import is guarded
        if not owners & declared:
            undeclared.append(f"{top} ({', '.join(sorted(owners))}; imported in {where})")
    assert not undeclared, "imported but not declared in pyproject.toml: " + "; ".join(undeclared)


def test_the_check_sees_a_transitive_only_import() -> None:
    """The scan finds lazy imports inside functions (the form every undeclared one here had)."""
    tops = _imported_tops(ROOT / "geodino")
    assert "affine" in tops and "rasterio" in tops and "torch" in tops
