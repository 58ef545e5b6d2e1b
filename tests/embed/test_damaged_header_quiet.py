"""A feature raster whose header is cut short (the image directory still reads, the GeoTIFF tags after it do not)
is one line on stderr: rasterio's NotGeoreferencedWarning ("Dataset has no geotransform ...") came twice before it,
once from the reader's open and once from the damage check's (audit)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from geodino.embed import embed_raster, pca_map
from geodino.errors import InputError
from tests.embed.conftest import random_image, write_tif
from tests.embed.toy_backbones import ConvBackbone

ROOT = Path(__file__).parents[2]
CLI = "import sys; from geodino.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture(scope="module")
def cog(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("header")
    src = write_tif(root / "in.tif", random_image(160, 96))
    bb = ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2)
    return embed_raster(src, bb, root / "feats.tif", tile=32, overlap=8, progress=False)


def header_cut(cog: Path, tmp_path: Path) -> Path:
    """A copy cut inside its header where the file still opens but has lost its geotransform (checked here with
    rasterio itself, so the test does not hang on one layout of the header)."""
    import rasterio

    cut = tmp_path / "head.tif"
    for size in range(400, 8000, 200):
        shutil.copy(cog, cut)
        with open(cut, "r+b") as f:
            f.truncate(size)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                rasterio.open(cut).close()
            except rasterio.errors.RasterioIOError:
                continue
        if any(issubclass(w.category, rasterio.errors.NotGeoreferencedWarning) for w in caught):
            return cut
    pytest.fail(f"no cut of {cog} opens without its geotransform")


def test_the_cli_prints_one_line_and_no_gdal_warning(cog, tmp_path):
    cut = header_cut(cog, tmp_path)
    out = tmp_path / "p.tif"
    done = subprocess.run(
        [sys.executable, "-c", CLI, "embed", "pca", str(cut), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"geodino: error: cannot read feature raster {cut} (the file ends at byte "), lines
    assert "geotransform" not in done.stderr and "Warning" not in done.stderr
    assert not out.exists()


def test_the_python_api_warns_nothing_before_its_error(cog, tmp_path, capfd):
    import rasterio

    cut = header_cut(cog, tmp_path)
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match=r"cannot read feature raster .*head\.tif \(the file ends at byte "):
            pca_map(cut, tmp_path / "p.tif")
    assert [str(w.message) for w in caught] == []
    assert capfd.readouterr().err == ""  # nor GDAL's own log on the process's stderr
    # an intact raster without a geotransform still says so (once: the damage check's open is quiet)
    plain = tmp_path / "plain.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(cog) as src, rasterio.open(plain, "w", **{**src.profile, "transform": None}) as dst:
            dst.write(src.read())
            dst.update_tags(**src.tags())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pca_map(plain, tmp_path / "q.tif")
    unplaced = [w for w in caught if "Dataset has no geotransform" in str(w.message)]  # not the write's own
    assert len(unplaced) == 1, [str(w.message) for w in caught]
    assert issubclass(unplaced[0].category, rasterio.errors.NotGeoreferencedWarning)
