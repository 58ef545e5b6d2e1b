"""`embed pca` on a feature raster of one cell said "fewer than 3 valid pixels; nothing to map": the raster holds
cells, not pixels, and nothing said what to do. It names the cells, the 3 a PCA needs and the way out, as
`embed cluster` does for --k."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.transform import from_origin

from geodino import cli


def test_pca_of_one_cell_names_cells_and_the_way_out(tmp_path, capsys):
    src = tmp_path / "small.tif"
    data = np.random.default_rng(0).integers(0, 255, (3, 8, 8)).astype("uint8")
    with rasterio.open(src, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8", crs="EPSG:32633",
                       transform=from_origin(500000, 4000000, 10, 10)) as dst:  # fmt: skip
        dst.write(data)
    feats = tmp_path / "f.tif"
    spec = "arch:vit_tiny?patch_size=8&depth=1&seed=0"
    assert cli.main(["embed", str(src), "--backbone", spec, "--out", str(feats), "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["embed", "pca", str(feats), "--out", str(tmp_path / "p.tif")]) == 2
    err = capsys.readouterr().err.strip()
    assert "has 1 valid cell away from nodata, fewer than the 3 a PCA needs; embed a larger area" in err, err
    assert not (tmp_path / "p.tif").exists()
