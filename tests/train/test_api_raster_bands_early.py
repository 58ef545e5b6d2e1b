"""`geodino.pretrain/distill(rasters, bands=...)` with a band name the rasters lack was refused only when the run
built its sources: after the run folder was made and locked (a used folder's leftover `hpc_ckpt_*` moved aside into
`checkpoints/ignored-*`), and distill left the missing parents of `out` behind. As for datacubes, the names are now
checked first, against every raster's header (read once, when the source's kind is decided) named as the raster
source names it (band descriptions, else the sensor's names, the sensor's aliases too): one line naming the first
file that lacks one, the name and its bands, nothing written."""

from __future__ import annotations

import numpy as np
import pytest

import geodino
from geodino.errors import InputError
from tests.helpers import write_tif
from tests.train.test_pretrain_api_bands import TINY

S2 = ["B02", "B03", "B04", "B08"]


def _named(root, n: int = 2):
    """A folder of `n` 4-band uint16 GeoTIFFs whose band descriptions are B02, B03, B04, B08."""
    folder = root / "s2"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        write_tif(folder / f"t{i}.tif", rng.integers(1, 3000, (4, 32, 32)).astype("uint16"), descriptions=S2)
    return folder


@pytest.mark.parametrize("fn", ["pretrain", "distill"])
def test_a_band_the_rasters_lack_is_refused_before_the_run_starts(api_configs, tmp_path, fn):
    folder = _named(tmp_path)
    args = ("arch:vit_tiny",) if fn == "distill" else ()
    line = r"^raster .*t0\.tif has no band 'B9' \(its bands: B02, B03, B04, B08\); pass bands= names among those$"
    with pytest.raises(InputError, match=line):
        getattr(geodino, fn)(*args, folder, tmp_path / "a" / "run", sensor="sentinel2_l2a", bands="B04,B9")
    assert api_configs == []  # the run (replaced here) was never started
    assert not (tmp_path / "a").exists()
    # the files' names in any case, and the sensor's aliases of them (red: B04, nir: B08), pass
    getattr(geodino, fn)(*args, folder, tmp_path / "a" / "run", sensor="sentinel2_l2a", bands=["b08", "red"])
    assert api_configs[-1].data.sources[0].bands == ["b08", "red"]


def test_unnamed_bands_take_the_sensors_names_and_the_line_says_how_to_name_them(api_configs, tmp_path):
    """A file without band descriptions: a sensor of its band count names its bands (8-bit RGB without a sensor is
    read as sat493m: R, G, B); with none, they are b1..bN and the line says how to name them."""
    folder = tmp_path / "rgb"
    folder.mkdir()
    write_tif(folder / "rgb.tif", np.ones((3, 32, 32), "uint8"))
    geodino.pretrain(folder, tmp_path / "r", bands="B,R")
    assert api_configs[-1].data.sources[0].bands == ["B", "R"]
    with pytest.raises(InputError, match=r"rgb\.tif has no band 'nir' \(its bands: R, G, B\); pass bands= names"):
        geodino.pretrain(folder, tmp_path / "r", bands="R,nir")
    five = tmp_path / "five"
    five.mkdir()
    write_tif(five / "x.tif", np.ones((5, 32, 32), "uint16"))
    with pytest.raises(InputError) as err:
        geodino.distill("arch:vit_tiny", five, tmp_path / "d", bands="red")
    assert str(err.value) == (
        f"raster {five / 'x.tif'} has no band 'red' (its bands: b1, b2, b3, b4, b5); pass bands= names among those "
        "or name the file's bands (band descriptions in the file, or a sensor= of its band count)"
    )
    assert len(api_configs) == 1 and not (tmp_path / "d").exists()


def test_each_header_is_read_once(api_configs, tmp_path, monkeypatch):
    """The check names each file's bands from the header read to decide the source's kind: every raster is opened
    once, and no reader (`RasterArchive`) reads the folder again."""
    import rasterio

    import geodino.data.archive as archive

    folder = _named(tmp_path, n=3)
    opened, built = [], []
    real_open = rasterio.open

    def spy_open(path, *args, **kw):
        opened.append(str(path))
        return real_open(path, *args, **kw)

    monkeypatch.setattr(rasterio, "open", spy_open)
    monkeypatch.setattr(archive.RasterArchive, "__init__", lambda self, paths, **kw: built.append(paths))
    with pytest.raises(InputError, match=r"t0\.tif has no band 'B9'"):
        geodino.pretrain(folder, tmp_path / "r", sensor="sentinel2_l2a", bands="B9")
    assert sorted(opened) == [str(folder / f"t{i}.tif") for i in range(3)]
    assert built == []


def _second_lacks_b08(root):
    """A folder of two 4-band uint16 GeoTIFFs: t0 named B02, B03, B04, B08; t1 B02, B03, B04, B05 (no B08)."""
    folder = root / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(1)
    write_tif(folder / "t0.tif", rng.integers(1, 3000, (4, 32, 32)).astype("uint16"), descriptions=S2)
    write_tif(folder / "t1.tif", rng.integers(1, 3000, (4, 32, 32)).astype("uint16"),
              descriptions=["B02", "B03", "B04", "B05"])  # fmt: skip
    return folder


@pytest.mark.parametrize("fn", ["pretrain", "distill"])
def test_a_band_only_a_later_raster_lacks_is_refused_before_the_run_starts(api_configs, tmp_path, fn):
    """Each file is matched on its own header by the source, so a name the first file has but a later one lacks
    stopped the run only once its folder was taken; the check covers every raster and names that file."""
    folder = _second_lacks_b08(tmp_path)
    args = ("arch:vit_tiny",) if fn == "distill" else ()
    with pytest.raises(InputError) as err:
        getattr(geodino, fn)(*args, folder, tmp_path / "a" / "run", sensor="sentinel2_l2a", bands="B04,nir")
    assert str(err.value) == (
        f"raster {folder / 't1.tif'} has no band 'nir' (its bands: B02, B03, B04, B05); pass bands= names among those"
    )
    assert api_configs == []
    assert not (tmp_path / "a").exists()
    getattr(geodino, fn)(*args, folder, tmp_path / "a" / "run", sensor="sentinel2_l2a", bands="B04,B03")
    assert api_configs[-1].data.sources[0].bands == ["B04", "B03"]


def test_a_real_run_refused_for_a_later_raster_leaves_a_used_folder_as_it_was(tmp_path):
    """The real run (not replaced), in a used folder: the late refusal had moved its leftover `hpc_ckpt_1.ckpt`
    aside and removed a killed run's temporary checkpoint; the early one leaves both, and a new folder is not made."""
    folder = _second_lacks_b08(tmp_path)
    out = tmp_path / "used"
    (out / "checkpoints").mkdir(parents=True)
    (out / "hpc_ckpt_1.ckpt").write_text("x")
    (out / "checkpoints" / ".step_00000002.ckpt.tmp-1").write_text("x")
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    line = r"^raster .*t1\.tif has no band 'B08' \(its bands: B02, B03, B04, B05\); pass bands= names among those$"
    for run in (out, tmp_path / "new" / "run"):
        with pytest.raises(InputError, match=line):
            geodino.pretrain(folder, run, steps=1, sensor="sentinel2_l2a", tile_size=16, bands="B08,B04",
                             overrides=TINY)  # fmt: skip
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert not (tmp_path / "new").exists()


def test_a_used_run_folder_is_left_as_it_was(tmp_path):
    """The real run: a folder with a leftover Lightning `hpc_ckpt_1.ckpt` and a killed run's temporary checkpoint
    keeps both (the run's start moved the one aside and removed the other before the band was refused)."""
    folder = _named(tmp_path)
    out = tmp_path / "used"
    (out / "checkpoints").mkdir(parents=True)
    (out / "hpc_ckpt_1.ckpt").write_text("x")
    (out / "checkpoints" / ".step_00000002.ckpt.tmp-1").write_text("x")
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    with pytest.raises(InputError, match=r"t0\.tif has no band 'swir16' \(its bands: B02, B03, B04, B08\)"):
        geodino.pretrain(folder, out, steps=1, sensor="sentinel2_l2a", tile_size=16, bands="red,swir16",
                         overrides=TINY)  # fmt: skip
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before


def test_an_rgb_file_is_checked_by_its_colour_names_as_the_source_reads_it(api_configs, tmp_path):
    """A GeoTIFF without band descriptions whose colour interpretation is RGB (16-bit here: no default sensor names
    it, as sat493m does 8-bit RGB): the raster source names its bands red, green, blue, so the early check must too
    (it said `has no band 'red' (its bands: b1, b2, b3)` while the source accepted it)."""
    import rasterio
    from rasterio.transform import from_origin

    folder = tmp_path / "rgb"
    folder.mkdir()
    prof = dict(driver="GTiff", width=32, height=32, count=3, dtype="uint16", photometric="RGB", crs="EPSG:32633")
    with rasterio.open(folder / "rgb.tif", "w", transform=from_origin(5e5, 4.65e6, 10, 10), **prof) as dst:
        dst.write(np.ones((3, 32, 32), "uint16"))
    geodino.pretrain(folder, tmp_path / "r", bands="red,green,blue")
    assert api_configs[-1].data.sources[0].bands == ["red", "green", "blue"]
    with pytest.raises(InputError, match=r"rgb\.tif has no band 'nir' \(its bands: red, green, blue\)"):
        geodino.pretrain(folder, tmp_path / "r", bands="red,nir")


def test_a_colour_name_pick_of_a_colour_infrared_file_is_refused_before_the_run_starts(api_configs, tmp_path):
    """An 8-bit 3-band colour-infrared file (GDAL tags it red, green, blue) with the 4-band naip sensor: a pick by
    colour name is a guess (`colour_bands.guessed_colour_pick`), refused before the run as the source refuses it."""
    folder = tmp_path / "cir"
    folder.mkdir()
    write_tif(folder / "cir.tif", np.ones((3, 32, 32), "uint8"))
    with pytest.raises(InputError, match=r"cir\.tif: 'R' would read its band 1 by its colour tag \(red\), but red, "):
        geodino.pretrain(folder, tmp_path / "r", sensor="naip", bands="R,G")
    assert api_configs == [] and not (tmp_path / "r").exists()
    geodino.pretrain(folder, tmp_path / "r", sensor="naip", bands="b1,b2")  # by position: read as before
    assert api_configs[-1].data.sources[0].bands == ["b1", "b2"]
