"""A feature raster damaged after `geodino embed` wrote it (a COG cut short, a Zarr chunk file deleted or overwritten)
is one line in every product (`geodino embed pca|cluster|similar|zonal|classify|change`): the file, the cells that do
not read when known, and what to do (write it again: the command its record names, with --overwrite); exit 2. They
were rasterio/zarr tracebacks, and a deleted Zarr chunk was read silently as nodata (reliability audit)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from geodino import cli
from geodino.embed import pca_map, zonal_embeddings
from geodino.errors import InputError

# 4-px patches on a 160 x 96 (rows x columns) input: 40 x 24 cells of 40 m from (500000, 4000000); Zarr chunks:
# 16 x 16 cells


def truncated(written, tmp_path) -> Path:
    cut = tmp_path / "cut.tif"
    shutil.copy(written["cog"], cut)
    with open(cut, "r+b") as f:
        f.truncate(cut.stat().st_size // 2)  # as `truncate -s` to half its size
    return cut


def store_copy(written, tmp_path, damage: str) -> tuple[Path, str]:
    """A copy of the Zarr store with its last chunk file deleted or overwritten with bytes that do not decode, and
    that chunk's key."""
    store = tmp_path / f"{damage}.zarr"
    shutil.copytree(written["zarr"], store)
    chunk = sorted(p for p in (store / "embedding").iterdir() if not p.name.startswith("."))[-1]
    if damage == "deleted":
        chunk.unlink()
    else:
        chunk.write_bytes(b"\x00garbled" * 40)
    return store, f"embedding/{chunk.name}"


def argv(product: str, feats: Path, written, tmp_path) -> list[str]:
    out = ["--out", str(tmp_path / ("z.parquet" if product == "zonal" else f"{product}.tif"))]
    if product == "zonal":
        return [product, str(feats), str(written["zones"]), *out]
    if product == "classify":
        return [product, str(feats), str(written["labels"]), "--column", "cover", "--folds", "2", *out]
    if product == "change":
        return [product, str(written["cog"]), str(feats), *out]
    if product == "similar":
        return [product, str(feats), *out, "--point", "500100,3999900"]
    return [product, str(feats), *out]


def err_line(capsys, args: list[str]) -> str:
    code = cli.main(["embed", *args])
    _, err = capsys.readouterr()
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("geodino: warning:")]
    assert code == 2 and len(lines) == 1, (args, err)
    return lines[0]


@pytest.mark.parametrize("product", ["pca", "cluster", "similar", "zonal", "classify", "change"])
def test_a_truncated_cog_is_one_line_in_every_product(capsys, tmp_path, written, product):
    cut = truncated(written, tmp_path)
    line = err_line(capsys, argv(product, cut, written, tmp_path))
    assert line.startswith(f"geodino: error: cannot read feature raster {cut} (the file ends at byte "), line
    assert "the file is truncated or corrupt" in line
    # its record names the input and backbone: the command that writes it again
    assert f"write it again (geodino embed {written['src']} --backbone toy:conv8p4 --out {cut} --overwrite" in line
    assert not list(tmp_path.glob(f"{product}.*")) and not (tmp_path / "z.parquet").exists()


@pytest.mark.parametrize("product", ["pca", "zonal", "classify", "change"])
def test_a_garbled_zarr_chunk_is_one_line_naming_the_cells_and_the_chunk(capsys, tmp_path, written, product):
    store, chunk = store_copy(written, tmp_path, "garbled")
    if product == "change":  # A and B on the same grid: both stores
        args = ["change", str(written["zarr"]), str(store), "--out", str(tmp_path / "c.tif")]
    else:
        args = argv(product, store, written, tmp_path)
    line = err_line(capsys, args)
    _, r, c = (int(i) for i in chunk.split("/")[1].split("."))  # the chunk's cells: 16 x 16, cut at 40 x 24
    cells = f"rows {16 * r}..{min(16 * r + 16, 40)}, columns {16 * c}..{min(16 * c + 16, 24)}"
    assert line.startswith(f"geodino: error: cannot read feature raster {store} at {cells} ("), line
    assert f"{chunk} failed" in line  # GDAL's message names the chunk file
    assert f"--out {store} --overwrite" in line


def test_a_deleted_zarr_chunk_is_refused_not_read_as_nodata(capsys, tmp_path, written):
    """GDAL reads a missing chunk as its fill value (NaN: nodata): the map came out with a hole and exit 0."""
    store, chunk = store_copy(written, tmp_path, "deleted")
    line = err_line(capsys, argv("pca", store, written, tmp_path))
    assert f"cannot read feature raster {store} (1 chunk file missing, e.g. {chunk})" in line, line
    with pytest.raises(InputError, match=r"cannot read feature raster .*deleted\.zarr \(1 chunk file missing"):
        zonal_embeddings(store, written["zones"], tmp_path / "z.parquet")


def test_a_header_cut_short_and_the_python_api(capsys, tmp_path, written):
    """Cut inside its header, the file's record is gone too: still "cannot read", not "not a feature raster", and
    the remedy is conditional (it may not be geodino's)."""
    cut = tmp_path / "head.tif"
    shutil.copy(written["cog"], cut)
    with open(cut, "r+b") as f:
        f.truncate(300)
    line = err_line(capsys, argv("pca", cut, written, tmp_path))
    assert f"cannot read feature raster {cut} (" in line and "if `geodino embed` wrote it, write it again" in line
    with pytest.raises(InputError, match=r"cannot read feature raster .*cut\.tif \(the file ends at byte"):
        pca_map(truncated(written, tmp_path), tmp_path / "p.tif")
    assert pca_map(written["cog"], tmp_path / "p.tif").exists()  # the intact raster still maps


def test_a_tile_inside_a_geotiff_that_does_not_decode_is_named_by_its_cells(capsys, tmp_path, written):
    """The end of the file is intact (the up-front check passes), a tile inside does not decode: the read that meets
    it names that tile's cells (the product read a row block of many tiles)."""
    import rasterio

    tiled = tmp_path / "tiled.tif"
    with rasterio.open(written["cog"]) as src:
        profile = dict(src.profile, tiled=True, blockxsize=16, blockysize=16, compress="zstd")
        with rasterio.open(tiled, "w", **profile) as dst:
            dst.write(src.read())
            dst.update_tags(**src.tags())
        with rasterio.open(tiled) as ds:  # the tile of rows 16..32, columns 0..16
            offset, size = (int(ds.get_tag_item(f"BLOCK_{k}_0_1", "TIFF", bidx=1)) for k in ("OFFSET", "SIZE"))
    with open(tiled, "r+b") as f:
        f.seek(offset)
        f.write(b"\0" * size)
    line = err_line(capsys, argv("pca", tiled, written, tmp_path))
    cells = "rows 16..32, columns 0..16"
    assert line.startswith(f"geodino: error: cannot read feature raster {tiled} at {cells} ("), line
    assert "--overwrite" in line
