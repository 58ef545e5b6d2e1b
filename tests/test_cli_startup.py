"""Start-up of the `geodino` command: its help imports none of the heavy libraries a command's work needs, so that
`--help` answers at once and a script that runs `geodino ... --help` (or checks its options) pays nothing for them;
the command that runs imports what it uses when it uses it."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = (
    "torch",
    "lightning",
    "transformers",
    "timm",
    "rasterio",
    "numpy",
    "zarr",
    "xarray",
    "dask",
    "pandas",
    "sklearn",
    "matplotlib",
    "scipy",
    "torchgeo",
)


@pytest.mark.parametrize("argv", [["--help"], ["embed", "--help"], ["--version"]])
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from geodino.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    line = next(line for line in done.stderr.splitlines() if line.startswith("LOADED"))
    assert line == "LOADED []"
    assert "usage" in done.stdout or "geodino" in done.stdout  # the help (or version) was printed
