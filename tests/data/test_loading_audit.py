"""How pretraining reads its data, from an adversarial audit: inputs that fed the model wrong pixels silently (band
names in another case, masks switched off, reprojected corners, rotated photos) and now read right or stop with
one line. Every fixture is generated here; values are checked against hand-computed ones."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.archive import RasterArchive
from geodino.data.sensors import Sensor
from geodino.errors import InputError

from .conftest import write_tif

# bands in R, G, B, N order; the statistics differ per band so a mix-up shows in the standardised values
RGBN = Sensor(
    "rgbn16",
    ("red", "green", "blue", "nir"),
    1e-4,
    (0.1, 0.2, 0.3, 0.4),
    (0.01, 0.02, 0.03, 0.04),
    False,
    nodata=None,
)


def _bands(values: tuple[int, ...], h: int = 16, w: int = 16, dtype: str = "uint16") -> np.ndarray:
    return np.stack([np.full((h, w), v, dtype=dtype) for v in values])


def test_band_descriptions_in_another_case_are_matched_by_name_not_position(tmp_path):
    """A PlanetScope-like file in B, G, R, N order whose descriptions are capitalised (Blue, Green, Red, NIR): the
    sensor's names are lower case. The exact-case check failed and the sensor was taken positionally, so the file's
    blue band was standardised with red's mean and std (and labelled red in the export record)."""
    p = write_tif(tmp_path / "bgrn.tif", _bands((1000, 2000, 3000, 4000)), descriptions=["Blue", "Green", "Red", "NIR"])
    archive = RasterArchive([p], sensor=RGBN, progress=False)
    # read in the sensor's band order (the file's red, band 3, comes first), each band with its own statistics
    assert archive.sensor.bands == ("red", "green", "blue", "nir")
    assert archive.sensor.mean == (0.1, 0.2, 0.3, 0.4)
    image = archive.sample(0, 0, 0, 4, 4)["image"]
    z = archive.sensor.standardize(image)[:, 0, 0]
    # red (0.3 - 0.1) / 0.01; green (0.2 - 0.2) / 0.02; blue: (0.1 - 0.3) / 0.03; nir (0.4 - 0.4) / 0.04
    np.testing.assert_allclose(z, [20.0, 0.0, -0.2 / 0.03, 0.0], atol=1e-3)


def test_band_names_the_sensor_places_elsewhere_are_refused_not_read_by_position(tmp_path):
    """Some names known (Blue at file band 1 is the sensor's band 3), one not (Infrared): a positional read would
    feed blue as red; one line names the band and what to do."""
    p = write_tif(tmp_path / "bgri.tif", _bands((1, 2, 3, 4)), descriptions=["Blue", "Green", "Red", "Infrared"])
    with pytest.raises(InputError, match=r"bgri.tif name their bands .*file band 1 'Blue' is the sensor's 'blue' "):
        RasterArchive([p], sensor=RGBN, progress=False)
    # names the sensor does not know at all still read by position (the file's order is the sensor's)
    q = write_tif(tmp_path / "plain.tif", _bands((1, 2, 3, 4)), descriptions=["r", "g", "b", "n"])
    assert RasterArchive([q], sensor=RGBN, progress=False).sensor.bands == RGBN.bands


def _masked_rgb(path, values: int = 100) -> object:
    """A 3-band uint8 GeoTIFF with an internal mask over its left half and no nodata value: how JPEG-compressed
    imagery is delivered (the masked pixels are not 0 after compression; here all 100)."""
    import rasterio
    from affine import Affine

    profile = dict(driver="GTiff", width=64, height=64, count=3, dtype="uint8", crs="EPSG:32633",
                   transform=Affine(0.5, 0, 500000, 0, -0.5, 4650000))  # fmt: skip
    mask = np.full((64, 64), 255, np.uint8)
    mask[:, :32] = 0
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((3, 64, 64), values, np.uint8))
        dst.write_mask(mask)
    return path


@pytest.mark.parametrize("sensor", [None, "maxar"])
def test_an_internal_mask_holds_under_the_sensors_nodata_value(tmp_path, sensor):
    """`maxar` declares nodata 0 for files that declare none: that value replaced the file's internal mask, so the
    masked half (100, not 0) was read as valid and trained on; now both apply, in tiles and in the grid pre-scan."""
    from geodino.data.archive import RasterSource

    p = _masked_rgb(tmp_path / "masked.tif")
    archive = RasterArchive([p], sensor=sensor, progress=False)
    _, valid = archive.read(0, 0, 0, 64, 64)
    assert not valid[:, :32].any() and valid[:, 32:].all()
    grid = RasterSource(archive, tile_size=32, sampling="grid", max_nodata_fraction=0.5, name="g")
    assert sorted(grid.tiles.grid_tile(k)[1] for k in range(len(grid))) == [32, 32]  # the left column is dropped


def _inside_file(scene, path) -> np.ndarray:
    """[h,w] whether each read-grid pixel centre lies inside the file's own footprint (by pyproj, not GDAL)."""
    import rasterio
    from pyproj import Transformer

    cols, rows = np.meshgrid(np.arange(scene.width) + 0.5, np.arange(scene.height) + 0.5)
    t = scene.affine
    x, y = t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f
    with rasterio.open(path) as src:
        fx, fy = Transformer.from_crs(scene.crs, src.crs.to_wkt(), always_xy=True).transform(x, y)
        left, bottom, right, top = src.bounds
    return (fx > left) & (fx < right) & (fy > bottom) & (fy < top)


@pytest.mark.parametrize(("file_nodata", "override"), [(None, None), (0, 65535)])
def test_reprojected_corners_beyond_the_file_are_nodata(tmp_path, file_nodata, override):
    """With `crs:` set, a UTM scene 200 km off its central meridian lands tilted in EPSG:4326 and the target
    rectangle's corners lie beyond the file. Without a nodata value (none declared, a sensor without one) or with a
    `nodata:` override other than the file's, the WarpedVRT filled them with 0 and they read as valid pixels;
    now they are nodata (the override, else an added alpha band), and the file's real zeros stay data."""
    from affine import Affine

    data = np.full((2, 120, 160), 500, np.uint16)
    data[:, 40:80, 60:100] = 0  # real zeros: data under a nodata: override that replaces a wrong declared 0
    p = write_tif(tmp_path / "tilted.tif", data, nodata=file_nodata)
    # write_tif's origin is on the central meridian; move it 200 km west so the grid rotates by ~1.5 degrees
    import rasterio

    with rasterio.open(p, "r+") as dst:
        dst.transform = Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 4650000.0)
    sensor = Sensor("two", ("a", "b"), 1e-4, (0.05, 0.05), (0.01, 0.01), False, nodata=None)
    archive = RasterArchive([p], sensor=sensor, nodata=override, crs="EPSG:4326", resampling="nearest", progress=False)
    scene = archive.scenes[0]
    values, valid = archive.read(0, 0, 0, scene.width, scene.height)
    inside = _inside_file(scene, p)
    assert (~inside).sum() > 500  # the corners are there to be read
    assert not (valid & ~inside).any()  # nothing beyond the file is valid
    assert np.isin(values[:, valid], [0, 500]).all()
    core = np.pad(inside, 1)
    core = core[1:-1, 1:-1] & core[:-2, 1:-1] & core[2:, 1:-1] & core[1:-1, :-2] & core[1:-1, 2:]
    assert (core & ~valid).sum() == 0  # everything the file covers is valid (its one-pixel edge aside)
    if override is not None:
        assert (values[:, valid] == 0).any()  # the real zeros under the override are read as data


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_web_images_are_read_upright_as_their_exif_orientation_says(fmt):
    """A 40 x 20 photo stored with EXIF orientation 6 (rotate 90 degrees clockwise to view) is 20 wide and 40 high
    upright, its stored left half (white) on top: torchvision decoded it as stored (sideways)."""
    import io

    from PIL import Image

    from geodino.data.images import decode_image

    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = 255
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, format=fmt, exif=exif.tobytes(), quality=95)
    arr = decode_image(buf.getvalue(), f"photo.{fmt.lower()}")
    assert arr.shape == (3, 40, 20)
    assert arr[:, :18].min() > 240 and arr[:, 22:].max() < 15  # stored left half -> top after the clockwise turn


def test_positional_band_picks_are_still_read_in_the_sensors_order(tmp_path):
    """`bands:` picking 12 of a 13-band file without descriptions by position (b1..b13 but b11): some picks resolve
    to the sensor's names (b9 -> B09, which sits 10th in sentinel2_l2a), others not (b10, b13). They are the user's
    picks, not the file's names: read by position as before, not refused as names the sensor places elsewhere."""
    p = write_tif(tmp_path / "b13.tif", _bands(tuple(range(100, 1400, 100))), nodata=None)
    picks = [f"b{i}" for i in range(1, 14) if i != 11]
    archive = RasterArchive([p], sensor="sentinel2_l2a", bands=picks, progress=False)
    assert archive.sensor.bands[8:10] == ("B8A", "B09")
    assert archive.sample(0, 0, 0, 2, 2)["image"][:, 0, 0].tolist() == pytest.approx(
        [0.01 * i for i in range(1, 14) if i != 11], rel=1e-5
    )


def _rgba(path) -> object:
    """A 32 x 32 RGBA uint8 GeoTIFF (GDAL's default for 4 uint8 bands: band 4 alpha), transparent on its left
    half; R, G, B = 30, 60, 90."""
    data = np.stack([np.full((32, 32), v, np.uint8) for v in (30, 60, 90, 255)])
    data[3, :, :16] = 0
    return write_tif(path, data, nodata=None, res=1.0)


def test_an_rgba_rasters_alpha_band_is_the_mask_not_a_fourth_band(tmp_path):
    """`data stats` leaves an RGBA file's alpha band out (a 3-band YAML); training read all 4 bands, so the file
    wanted a sensor (4 uint8 bands), refused the YAML stats wrote for it, or trained on alpha as a band. The alpha
    band is now the mask and the three data bands are read (uint8 RGB: SAT-493M by default)."""
    import warnings

    from geodino.data.stats import write_stats

    p = _rgba(tmp_path / "rgba.tif")
    archive = RasterArchive([p], progress=False)
    assert archive.sensor.name == "sat493m" and archive.scenes[0].band_indexes == (1, 2, 3)
    sample = archive.sample(0, 0, 0, 32, 32)
    np.testing.assert_allclose(sample["image"][:, 0, 20], [30 / 255, 60 / 255, 90 / 255], rtol=1e-6)
    assert not sample["valid"][:, :16].any() and sample["valid"][:, 16:].all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stats warn that 512 valid pixels are few
        yaml = write_stats([str(p)], tmp_path / "rgba.yaml", progress=False)
    own = RasterArchive([p], sensor=str(yaml), progress=False)  # the YAML stats wrote for the file fits it
    assert own.sensor.bands == ("red", "green", "blue")  # GDAL's RGBA colour interpretation names them


def test_a_sensor_with_a_band_for_the_alpha_band_reads_it_as_data_and_says_so(tmp_path):
    """An RGBN file GDAL flagged RGBA (no PHOTOMETRIC=MINISBLACK) with the 4-band naip sensor: band 4 stays data,
    with one warning saying how to clear the flag or leave it out."""
    p = _rgba(tmp_path / "rgbn.tif")
    line = r"band 4 is an alpha band .*/rgbn\.tif but sensor 'naip' has 4 bands.*gdal_edit"
    with pytest.warns(UserWarning, match=line):
        archive = RasterArchive([p], sensor="naip", progress=False)
    assert archive.scenes[0].band_indexes == (1, 2, 3, 4)


# a QA band read as a model band is this test's input; its warning is test_qa_band_as_model_input's subject
@pytest.mark.filterwarnings("ignore:band .* is a QA band:UserWarning")
def test_a_stacked_vrt_of_bands_of_different_data_types_reads(tmp_path):
    """`data stack` of a uint16 reflectance band and a uint8 band (B02 and a classification layer): every tile
    read failed with 'window read failed (more than one 'dtype' found; the file may be truncated or corrupt)', a
    healthy file blamed. The bands are now read in the type holding both (uint16), values unchanged, also in the
    grid pre-scan."""
    from geodino.data.archive import RasterSource
    from geodino.data.vrt import stack_bands

    b02 = write_tif(tmp_path / "B02.tif", _bands((1000,), 32, 32), nodata=None)
    scl = write_tif(tmp_path / "SCL.tif", _bands((4,), 32, 32, dtype="uint8"), nodata=None)
    vrt = stack_bands({"B02": b02, "SCL": scl}, tmp_path / "scene.vrt")
    sensor = Sensor("mixed", ("B02", "SCL"), (1e-4, 1.0), (0.1, 4.0), (0.05, 1.0), False, nodata=0)
    archive = RasterArchive([str(vrt)], sensor=sensor, progress=False)
    assert archive.scenes[0].dtype == "uint16"
    np.testing.assert_allclose(archive.sample(0, 10, 10, 16, 16)["image"][:, -1, -1], [0.1, 4.0], rtol=1e-6)
    grid = RasterSource(archive, tile_size=16, sampling="grid", name="g")
    assert len(grid) == 4
    np.testing.assert_allclose(grid.get(0, seed=0)["image"][:, 0, 0], [0.1, 4.0], rtol=1e-6)


def test_data_stats_with_a_sensor_matches_the_files_band_names(tmp_path):
    """`data stats --sensor sentinel2_l2a` on 3-band files whose descriptions are B02, B03, B04 was refused ('has 3
    bands but sensor has 12; name the files' bands with --band-names') although the files name them and a training
    source with that sensor reads them by name. Now the statistics are computed, in the order --bands asks, over
    the valid pixels: nodata 0 in every band on the left half; B02's real zeros (top right) are data."""
    import warnings

    from geodino.data.stats import compute_stats

    data = _bands((100, 200, 300), 64, 64)
    data[:, :, :32] = 0
    data[0, :32, 32:] = 0
    p = write_tif(tmp_path / "s2.tif", data, nodata=0, descriptions=["B02", "B03", "B04"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # B04 is constant: warned
        sensor, prov = compute_stats([str(p)], sensor="sentinel2_l2a", bands=["B04", "B02"], progress=False)
    assert sensor.bands == ("B04", "B02") and prov["pixels"] == [2048, 2048]
    assert sensor.mean == pytest.approx((0.03, 0.005))
    assert sensor.std[1] == pytest.approx(0.005, rel=1e-3)  # half 0, half 0.01


@pytest.mark.parametrize("sensor", [None, "naip"])
def test_a_reprojected_rgba_raster_keeps_its_own_alpha_band(tmp_path, sensor):
    """An RGBA GeoTIFF without a nodata value read with `crs:` set: the WarpedVRT was asked to add an alpha band
    for the cells beyond the file, which GDAL refuses when the file has one ('The VRT already has an alpha band'),
    so every window read failed (with naip, which read the same file before 192a1bc, too). The file's own alpha
    band is warped instead: its transparent half and the corners beyond the file are nodata, the rest valid."""
    import warnings

    import rasterio
    from affine import Affine

    p = _rgba(tmp_path / "rgba.tif")
    with rasterio.open(p, "r+") as dst:  # 200 km off the central meridian: tilted in EPSG:4326
        dst.transform = Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 4650000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # naip: the alpha band goes in as data, said once
        archive = RasterArchive([p], sensor=sensor, crs="EPSG:4326", resampling="nearest", progress=False)
    scene = archive.scenes[0]
    values, valid = archive.read(0, 0, 0, scene.width, scene.height)
    assert values.shape[0] == (3 if sensor is None else 4)
    inside = _inside_file(scene, p)
    assert (~inside).sum() > 20 and not (valid & ~inside).any()  # nothing beyond the file is valid
    assert (values[:3, valid] == np.array([[30], [60], [90]])).all()
    assert 0.4 < valid.sum() / inside.sum() < 0.6  # the opaque half of the file, not its transparent one


def test_probes_and_embed_images_read_photos_upright_as_pretraining_does(tmp_path):
    """`eval.datasets.read_array` (image-folder probes, `embed images`) read a photo as stored while pretraining
    turned it by its EXIF orientation: the same phone photo was upright in training and sideways in the probes.
    Both now give the same upright pixels."""
    from PIL import Image

    from geodino.data.images import decode_image
    from geodino.eval.datasets import read_array

    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = 255
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6
    path = tmp_path / "photo.png"
    im.save(path, exif=exif.tobytes())
    got = read_array(path)
    assert got.shape == (3, 40, 20)
    np.testing.assert_array_equal(got, np.asarray(decode_image(path.read_bytes(), "photo.png")))
