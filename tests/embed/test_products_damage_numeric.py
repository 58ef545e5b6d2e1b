"""A feature raster whose compressed tile (or Zarr chunk) was overwritten with bytes that still decode reads as
garbage that no checksum catches: `geodino embed pca` died in numpy's "Eigenvalues did not converge" traceback (exit
1), cluster and similar wrote maps of garbage after overflow warnings (exit 0). Every product now refuses values no
backbone gives (not finite, beyond +/-1e6) in one line naming the file, the tile and the way out (write it again:
the command its record names, with --overwrite), exit 2, nothing written; a fit that fails on the numbers is the same
line (audit)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from geodino import cli
from geodino.embed import pca_map, zonal_embeddings
from geodino.embed.reader import FEATURE_LIMIT, fitting, garbled_values
from geodino.errors import InputError
from tests.embed.test_damaged_features import argv

# 4-px patches on a 160 x 96 (rows x columns) input: 40 x 24 cells of 40 m from (500000, 4000000)
# decoded bytes of the overwritten tile: a repeating run, which zstd packs small, so it fits where the tile was
GARBAGE = bytes(range(1, 256)) * 200


def garbled_cog(written, tmp_path) -> Path:
    """The COG as geodino writes it (ZSTD, floating-point predictor) in 16 x 16 tiles, the tile of rows 16..32,
    columns 0..16 overwritten with a valid ZSTD frame of other bytes: it decodes, to values spread over every
    exponent."""
    import numcodecs
    import rasterio

    path = tmp_path / "garbled.tif"
    with rasterio.open(written["cog"]) as src:
        profile = dict(src.profile, tiled=True, blockxsize=16, blockysize=16, compress="zstd", predictor=3)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(src.read())
            dst.update_tags(**src.tags())
    with rasterio.open(path) as ds:
        offset, size = (int(ds.get_tag_item(f"BLOCK_{k}_0_1", "TIFF", bidx=1)) for k in ("OFFSET", "SIZE"))
        n = 16 * 16 * ds.count * 4
    frame = bytes(numcodecs.Zstd(level=19).encode(GARBAGE[:n]))
    assert len(frame) <= size
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(frame + b"\0" * (size - len(frame)))
    with rasterio.open(path) as ds:  # it does decode: nothing but the values tells
        assert not np.all(np.abs(ds.read()) <= FEATURE_LIMIT)
    return path


def garbled_store(written, tmp_path) -> tuple[Path, str]:
    """A copy of the Zarr store whose last chunk file holds a valid Blosc frame of huge (finite) values."""
    import json

    import numcodecs

    store = tmp_path / "garbled.zarr"
    shutil.copytree(written["zarr"], store)
    meta = json.loads((store / "embedding" / ".zarray").read_text())
    chunk = sorted(p for p in (store / "embedding").iterdir() if not p.name.startswith("."))[-1]
    data = np.full(meta["chunks"], 3.0e30, dtype=meta["dtype"])
    chunk.write_bytes(numcodecs.get_codec(meta["compressor"]).encode(data))
    return store, chunk.name


def err_line(capsys, args: list[str]) -> str:
    code = cli.main(["embed", *args])
    _, err = capsys.readouterr()
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("geodino: warning: no cross-validation")]
    assert code == 2 and len(lines) == 1, (args, err)
    return lines[0]


@pytest.mark.parametrize("product", ["pca", "cluster", "similar", "zonal", "classify", "change"])
def test_a_tile_that_decodes_to_garbage_is_one_line_in_every_product(capsys, tmp_path, written, product):
    bad = garbled_cog(written, tmp_path)
    line = err_line(capsys, argv(product, bad, written, tmp_path))
    assert line.startswith(f"geodino: error: cannot read feature raster {bad} at rows 16..32, columns 0..16 ("), line
    assert "values no backbone gives, e.g. " in line and "not finite or beyond +/-1e+06" in line
    assert f"write it again (geodino embed {written['src']} --backbone toy:conv8p4 --out {bad} --overwrite" in line
    assert not [p for p in tmp_path.iterdir() if p.name not in ("garbled.tif", "garbled.tif.aux.xml")]


def test_a_zarr_chunk_of_huge_values_is_named_by_its_cells(tmp_path, written):
    store, chunk = garbled_store(written, tmp_path)
    _, r, c = (int(i) for i in chunk.split("."))  # 16 x 16 chunks on 40 x 24 cells
    cells = f"rows {16 * r}..{min(16 * r + 16, 40)}, columns {16 * c}..{min(16 * c + 16, 24)}"
    with pytest.raises(InputError, match=rf"garbled\.zarr at {cells} \(values no backbone gives, e\.g\. 3e\+30 at "):
        pca_map(store, tmp_path / "p.tif")
    assert not (tmp_path / "p.tif").exists()


def test_inf_in_a_valid_cell_is_refused_and_large_finite_features_still_map(tmp_path, written):
    """NaN marks nodata, so +inf in one band left the cell valid (and the PCA without an answer); features a
    thousand times larger than the toy's are still features."""
    import rasterio

    with rasterio.open(written["cog"]) as src:
        data, profile, tags = src.read(), src.profile, src.tags()
    big = tmp_path / "big.tif"
    with rasterio.open(big, "w", **profile) as dst:
        dst.write(data * 1000)
        dst.update_tags(**tags)
    with rasterio.open(big) as src:
        assert np.nanmax(np.abs(src.read())) > 100
    assert pca_map(big, tmp_path / "big_pca.tif").exists()
    data[5, 30, 7] = np.inf
    inf = tmp_path / "inf.tif"
    with rasterio.open(inf, "w", **profile) as dst:
        dst.write(data)
        dst.update_tags(**tags)
    with rasterio.open(inf) as src:
        bh, bw = src.block_shapes[0]
    rows, cols = f"0..{min(bh, 40)}", f"0..{min(bw, 24)}"
    with pytest.raises(InputError, match=rf"inf\.tif at rows {rows}, columns {cols} \(values no backbone gives, "
                       r"e\.g\. inf at row 30, column 7: not finite"):  # fmt: skip
        pca_map(inf, tmp_path / "p.tif")


def test_garbled_values_finds_the_first_bad_cell():
    f = np.zeros((3, 4, 5), np.float32)
    assert garbled_values(f) is None and garbled_values(np.zeros((3, 0, 0), np.float32)) is None
    f[2, 1, 3] = -FEATURE_LIMIT  # the limit itself is a value
    assert garbled_values(f) is None
    f[1, 2, 4] = -2e6
    f[0, 3, 0] = np.nan
    assert garbled_values(f) == (3, 0, "nan")  # in C order of (band, row, column)
    f[0, 3, 0] = 0
    assert garbled_values(f) == (2, 4, "-2e+06")


def test_a_fit_that_fails_on_the_numbers_is_the_raster_line_and_other_errors_pass(tmp_path, written, monkeypatch):
    from sklearn.decomposition import PCA

    meta = {"input": "in.tif", "model_spec": "toy"}
    with pytest.raises(InputError, match=r"cannot read feature raster f\.tif \(the PCA failed on its values: SVD did "
                       r"not converge\): .*geodino embed in\.tif --backbone toy --out f\.tif --overwrite"):  # fmt: skip
        with fitting("f.tif", meta, "the PCA"):
            raise np.linalg.LinAlgError("SVD did not converge")
    with pytest.raises(InputError, match=r"\(k-means failed on its values: Input X contains infinity or a value too"):
        with fitting("f.tif", meta, "k-means"):
            raise ValueError("Input X contains infinity or a value too large for dtype('float64').")
    with pytest.raises(ValueError, match=r"^n_components=3 must be between"):  # a bug, not damage: unchanged
        with fitting("f.tif", meta, "the PCA"):
            raise ValueError("n_components=3 must be between 0 and min(n_samples, n_features)=2")

    def diverge(self, *args, **kwargs):
        raise np.linalg.LinAlgError("Eigenvalues did not converge")

    monkeypatch.setattr(PCA, "fit", diverge)
    monkeypatch.setattr(PCA, "fit_transform", diverge)
    with pytest.raises(InputError, match=r"feats\.tif \(the PCA of \d+ sampled cells failed on its values: "
                       r"Eigenvalues did not converge\): .*--overwrite"):  # fmt: skip
        pca_map(written["cog"], tmp_path / "p.tif")
    assert not (tmp_path / "p.tif").exists()
    import geopandas as gpd
    from shapely.geometry import box

    x0, y0 = 500000.0, 4000000.0  # three zones: the quick-look's PCA needs three means
    zones = [box(x0 + 200 * i, y0 - 400, x0 + 200 * i + 200, y0) for i in range(3)]
    gpd.GeoDataFrame({"id": [1, 2, 3]}, geometry=zones, crs="EPSG:32633").to_file(tmp_path / "zones.gpkg")
    with pytest.raises(InputError, match=r"feats\.tif \(the quick-look's PCA of 3 zone means failed on its values: "
                       r"Eigenvalues did not converge\)"):  # fmt: skip
        zonal_embeddings(written["cog"], tmp_path / "zones.gpkg", tmp_path / "z.parquet")
