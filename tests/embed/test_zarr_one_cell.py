"""A GeoZarr output one cell wide or high: GDAL cannot place it (it reads the transform from the x/y coordinates'
spacing), so `.zarr` is refused before any work and the COG carries the transform; stores GDAL can place read back
the COG's transform, and the products place a one-cell store from its `spatial_ref` record."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from rasterio.transform import from_origin

from geodino import cli
from tests.embed.conftest import write_tif
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
T = from_origin(500000.0, 4000000.0, 10.0, 10.0)


def _image(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (3, h, w), dtype=np.uint8)


@pytest.mark.parametrize(("h", "w", "cells"), [(5, 5, "1 x 1"), (1, 100, "13 x 1"), (100, 1, "1 x 13")])
def test_a_one_cell_zarr_is_refused_and_the_cog_is_placed(tmp_path, capsys, h, w, cells):
    import rasterio

    src = write_tif(tmp_path / "in.tif", _image(h, w), transform=T)
    one_line_exit_2(
        capsys,
        tmp_path,
        "embed", src, "-b", SPEC, "--out", tmp_path / "f.zarr", "--no-progress",
        expect=(f"output {tmp_path / 'f.zarr'} would be {cells} cells (width x height)", "--out", "f.tif"),
    )  # fmt: skip
    assert cli.main(["embed", str(src), "-b", SPEC, "--out", str(tmp_path / "f.tif"), "--no-progress"]) == 0
    with rasterio.open(tmp_path / "f.tif") as cog:
        assert cog.transform.almost_equals(T @ T.scale(8), precision=1e-6) and cog.crs.to_epsg() == 32633


def test_an_upsampled_zarr_one_pixel_high_is_refused(tmp_path, capsys):
    src = write_tif(tmp_path / "in.tif", _image(1, 100), transform=T)
    one_line_exit_2(
        capsys,
        tmp_path,
        "embed", src, "-b", SPEC, "--out", tmp_path / "f.zarr", "--upsample", "--no-progress",
        expect=("would be 100 x 1 pixels (width x height)", "write a COG instead"),
    )  # fmt: skip


# a checkpoint or folder without a normalisation record is this test's input (that warning is
# test_normalization_records' subject)
@pytest.mark.filterwarnings("ignore:.*records no input normalisation:UserWarning")
def test_the_one_cell_refusal_comes_before_the_backbone_loads_when_its_patch_size_is_known(
    tmp_path, monkeypatch, capsys
):
    """The grid needs the input's header and the patch size: an `arch:` spec states it, and an upsampled grid (input
    pixels) needs none, so neither loads the backbone to be refused (the check ran after the load); a checkpoint's
    patch size is in its weights: it is still refused, once loaded."""
    import torch

    import geodino.embed.pipeline as pipeline
    from geodino.models import build_model

    real = pipeline.resolve_backbone
    loaded = []
    monkeypatch.setattr(pipeline, "resolve_backbone", lambda *a, **k: loaded.append(a) or real(*a, **k))
    src = write_tif(tmp_path / "in.tif", _image(5, 100), transform=T)
    row = write_tif(tmp_path / "row.tif", _image(1, 100), transform=T)
    ckpt = tmp_path / "ckpt.pth"
    torch.save(build_model("vit_tiny", patch_size=8, depth=1, in_chans=3).state_dict(), ckpt)
    cases = [
        (src, (SPEC,), "13 x 1 cells", False),
        (src, ("arch:vit_tiny?depth=1&bands=3",), "7 x 1 cells", False),  # the default patch size, 16
        (row, (str(ckpt), "--upsample"), "100 x 1 pixels", False),
        (src, (str(ckpt),), "13 x 1 cells", True),
    ]
    for inp, (spec, *more), cells, loads in cases:
        loaded.clear()
        one_line_exit_2(
            capsys,
            tmp_path,
            "embed", inp, "-b", spec, *more, "--out", tmp_path / "f.zarr", "--no-progress",
            expect=(f"would be {cells} (width x height)", "f.tif"),
        )  # fmt: skip
        assert bool(loaded) is loads, (spec, more)


def test_the_smallest_accepted_store_reads_the_cogs_transform_in_gdal(tmp_path):
    """2 x 2 cells: GDAL derives the spacing from the coordinates and places the store where the COG is."""
    import rasterio

    src = write_tif(tmp_path / "in.tif", _image(16, 9), transform=T)  # 2 x 2 cells (the last column padded)
    for out in ("f.zarr", "f.tif"):
        assert cli.main(["embed", str(src), "-b", SPEC, "--out", str(tmp_path / out), "--no-progress"]) == 0
    with rasterio.open(f'ZARR:"{tmp_path / "f.zarr"}":/embedding') as z, rasterio.open(tmp_path / "f.tif") as c:
        assert z.shape == c.shape == (2, 2) and z.crs == c.crs
        assert z.transform.almost_equals(c.transform, precision=1e-6)


def test_products_place_a_one_cell_store_from_its_spatial_ref(tmp_path):
    """A store written before the refusal (GDAL sees the identity transform): the reader takes the store's record."""
    import rasterio

    from geodino.embed.writers import EmbeddingReader, create_store, finalize_store

    store = tmp_path / "old.zarr"
    create_store(
        store, height=1, width=1, transform=T @ T.scale(8), crs="EPSG:32633", band_names=["E000", "E001"],
        dtype="float32", chunk=16, metadata={"model_spec": "x"},
    )  # fmt: skip
    finalize_store(store)
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning), rasterio.open(f'ZARR:"{store}":/embedding') as gd:
        assert gd.transform.is_identity  # what GDAL makes of it
    with warnings.catch_warnings():
        warnings.simplefilter("error", rasterio.errors.NotGeoreferencedWarning)  # not from the reader
        rd = EmbeddingReader(store)
    with rd:
        assert rd.transform.almost_equals(T @ T.scale(8), precision=1e-6) and rd.crs.to_epsg() == 32633
