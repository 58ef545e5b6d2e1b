"""`geodino embed` honours the DN -> physical rule a GeoTIFF/VRT declares itself (GDAL <Scale>/<Offset>, rasterio's
`src.scales`/`src.offsets`), as it honours a STAC item's raster:bands: Sentinel-2 L2A of processing baseline
>= 04.00 stores DN = reflectance x 10^4 + 1000 and declares scale 0.0001, offset -0.1."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from geodino.embed import embed_raster, embed_scenes
from geodino.embed.pipeline import run_lines
from geodino.errors import InputError
from tests.embed.conftest import random_image, read_all, stac_item, write_tif

OPTS = {"tile": 32, "overlap": 8, "progress": False}
DECLARED = "x*0.0001-0.1 (the input's GDAL scale/offset)"


def reflectance(c: int = 3, seed: int = 3) -> np.ndarray:
    """Reflectance x 10^4 (integers 1..5000), so DN = this + 1000 fits uint16 and float32 reads it exactly."""
    return random_image(48, 48, c=c, seed=seed, dtype="uint16").astype(np.int64) % 5000 + 1


def tag(path: Path, scales: tuple[float, ...], offsets: tuple[float, ...]) -> Path:
    """Set the file's GDAL scale/offset (as a Sentinel-2 COG of baseline >= 04.00 carries them)."""
    import rasterio

    with rasterio.open(path, "r+") as dst:
        dst.scales = scales
        dst.offsets = offsets
    return path


def reference(tmp_path: Path, refl: np.ndarray, name: str = "ref") -> np.ndarray:
    """The features of the reflectance itself (float input is read as reflectance, no rule)."""
    ref = write_tif(tmp_path / f"{name}.tif", (refl * 1e-4).astype(np.float32))
    return read_all(embed_raster(ref, _bb(), tmp_path / f"{name}_f.tif", **OPTS))[0]


def _bb():
    from tests.embed.toy_backbones import ConvBackbone

    return ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2)


def test_a_rasters_own_scale_and_offset_are_applied_and_recorded(tmp_path, capsys):
    """DN + 1000 with scale 0.0001 / offset -0.1 declared: the features are those of the reflectance (the old code
    read DN / 10^4 with a warning: +0.1 everywhere), the rule is recorded and said; a rule given by the user
    (`scale`) or file_scale=false reads the DN without the tags."""
    refl = reflectance()
    dn = tag(write_tif(tmp_path / "dn.tif", (refl + 1000).astype(np.uint16), nodata=0), (1e-4,) * 3, (-0.1,) * 3)
    want = reference(tmp_path, refl)
    with warnings.catch_warnings(record=True) as caught, run_lines():  # the command's lines, without the bar
        warnings.simplefilter("always")
        got = embed_raster(dn, _bb(), tmp_path / "dn_f.tif", **OPTS)
    assert not [w for w in caught if "assuming reflectance" in str(w.message)]  # the file says its rule
    data, *_, tags, _ = read_all(got)
    np.testing.assert_allclose(data, want, atol=1e-5)
    assert tags["GEODINO_INPUT_SCALE"] == DECLARED
    assert (
        "input DN -> reflectance x*0.0001-0.1 (declared by the input: its GDAL scale/offset)" in capsys.readouterr().err
    )
    for name, extra, desc in (
        ("off", {"file_scale": False}, "x/10000 (uint16, assumed)"),
        ("user", {"scale": 1e-4}, "x*0.0001"),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = embed_raster(dn, _bb(), tmp_path / f"{name}.tif", **OPTS, **extra)
        data, *_, tags, _ = read_all(out)
        assert tags["GEODINO_INPUT_SCALE"] == desc
        assert np.abs(data - want).max() > 1e-3  # read as DN / 10^4: 0.1 too bright


def test_per_band_rules_follow_a_bands_selection(tmp_path):
    """Four bands with their own scale and offset, three picked by `bands=[4, 2, 1]`: each band read gets its own
    rule, in the order picked (hand-computed reflectance as reference)."""
    refl = reflectance(c=4, seed=5)
    scales, offsets = (1e-4, 2e-4, 1e-4, 5e-5), (-0.1, 0.0, -0.2, 0.0)
    dn = np.rint(np.stack([(r * 1e-4 - o) / s for r, s, o in zip(refl, scales, offsets)])).astype(np.uint16)
    path = tag(write_tif(tmp_path / "dn.tif", dn, nodata=0), scales, offsets)
    got = embed_raster(path, _bb(), tmp_path / "f.tif", bands=[4, 2, 1], **OPTS)
    data, *_, tags, _ = read_all(got)
    # reflectance by hand: DN * scale + offset of bands 4, 2, 1
    by_hand = np.stack([dn[b - 1] * scales[b - 1] + offsets[b - 1] for b in (4, 2, 1)])
    ref = write_tif(tmp_path / "by_hand.tif", by_hand.astype(np.float32))
    want = read_all(embed_raster(ref, _bb(), tmp_path / "by_hand_f.tif", **OPTS))[0]
    np.testing.assert_allclose(data, want, atol=1e-5)
    assert tags["GEODINO_INPUT_SCALE"] == "x*[5e-05,0.0002,0.0001]+[0,0,-0.1] (the input's GDAL scale/offset)"


def vrt_over(path: Path, out: Path, scale: float, offset: float, bands: int = 3) -> Path:
    """A VRT over `path` declaring <Scale>/<Offset> on every band (as gdal_translate -of VRT -a_scale writes)."""
    import rasterio

    with rasterio.open(path) as src:
        head = (
            f'<VRTDataset rasterXSize="{src.width}" rasterYSize="{src.height}">'
            f"<SRS>{src.crs.to_wkt()}</SRS><GeoTransform>{', '.join(map(repr, src.transform.to_gdal()))}"
            "</GeoTransform>"
        )
    body = "".join(
        f'<VRTRasterBand dataType="UInt16" band="{b}"><NoDataValue>0</NoDataValue><Offset>{offset!r}</Offset>'
        f"<Scale>{scale!r}</Scale><SimpleSource><SourceFilename>{path}</SourceFilename>"
        f"<SourceBand>{b}</SourceBand></SimpleSource></VRTRasterBand>"
        for b in range(1, bands + 1)
    )
    out.write_text(head + body + "</VRTDataset>")
    return out


def test_scenes_of_both_baselines_declaring_their_rules_give_the_same_features(tmp_path):
    """A folder of two scenes of the same reflectance, one stored before baseline 04.00 (a GeoTIFF declaring
    0.0001 / 0), one after (a VRT declaring 0.0001 / -0.1 over DN + 1000): each read by its own rule, equal
    features, one mosaic; the old code read both as DN / 10^4, 0.1 apart."""
    refl = reflectance()
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    tag(write_tif(scenes / "before.tif", refl.astype(np.uint16), nodata=0), (1e-4,) * 3, (0.0,) * 3)
    raw = write_tif(tmp_path / "after_dn.tif", (refl + 1000).astype(np.uint16), nodata=0)
    vrt_over(raw, scenes / "after.vrt", 1e-4, -0.1)
    out = tmp_path / "feats"
    (mosaic,) = embed_scenes(scenes, backbone=_bb(), out=out, **OPTS)
    a, b = read_all(out / "before.tif"), read_all(out / "after.tif")
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)
    np.testing.assert_allclose(a[0], reference(tmp_path, refl), atol=1e-5)
    assert a[4]["GEODINO_INPUT_SCALE"] == "x*0.0001 (the input's GDAL scale/offset)"
    assert b[4]["GEODINO_INPUT_SCALE"] == DECLARED
    assert mosaic.exists()


def test_scenes_that_declare_beside_scenes_that_do_not_are_refused_up_front(tmp_path):
    """One scene declaring its scale/offset, one not: they would be read by two rules (the mosaic refused the mix
    only after both were embedded). Refused before anything is written, naming one of each and the ways out;
    one rule for all (`scale`) or file_scale=false runs."""
    refl = reflectance()
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    tag(write_tif(scenes / "a_tagged.tif", (refl + 1000).astype(np.uint16), nodata=0), (1e-4,) * 3, (-0.1,) * 3)
    write_tif(scenes / "b_bare.tif", refl.astype(np.uint16), nodata=0)
    out = tmp_path / "feats"
    with pytest.raises(
        InputError,
        match=r"1 of 2 scenes declare their bands' scale/offset \(e\.g\. .*a_tagged\.tif: GDAL scale/offset\) and 1 "
        r"do not \(e\.g\. .*b_bare\.tif\).*--scale FACTOR.*file_scale=false",
    ):
        embed_scenes(scenes, backbone=_bb(), out=out, **OPTS)
    assert not out.exists() or not any(out.glob("*.tif"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embed_scenes(scenes, backbone=_bb(), out=tmp_path / "off", file_scale=False, **OPTS)
    embed_scenes(scenes, backbone=_bb(), out=tmp_path / "user", scale=1e-4, **OPTS)
    for folder in ("off", "user"):
        assert (tmp_path / folder / "a_tagged.tif").exists() and (tmp_path / folder / "b_bare.tif").exists()


def test_a_stac_items_raster_bands_win_over_its_files_tags(tmp_path):
    """A STAC item declaring 0.0001 / -0.1 (raster:bands) for a COG whose own tags say 0.0001 / 0 (stale): the
    item's rule is read; with stac_scale=false the file's tags are (each recorded as what it is)."""
    pytest.importorskip("pystac")
    refl = reflectance()
    cog = tag(write_tif(tmp_path / "s2.tif", (refl + 1000).astype(np.uint16), nodata=0), (1e-4,) * 3, (0.0,) * 3)
    rule = {"data_type": "uint16", "nodata": 0, "scale": 1e-4, "offset": -0.1}
    item = stac_item("S2", {"image": {"href": str(cog), "type": "image/tiff", "raster:bands": [rule] * 3}}, eo=False)
    items = tmp_path / "items.json"
    items.write_text(json.dumps({"type": "FeatureCollection", "features": [item]}))
    want = reference(tmp_path, refl)
    embed_scenes(items, backbone=_bb(), out=tmp_path / "item", asset="image", **OPTS)
    data, *_, tags, _ = read_all(tmp_path / "item" / "S2.tif")
    np.testing.assert_allclose(data, want, atol=1e-5)
    assert tags["GEODINO_INPUT_SCALE"] == "x*0.0001-0.1 (band_scale/band_offset)"
    embed_scenes(items, backbone=_bb(), out=tmp_path / "file", asset="image", stac_scale=False, **OPTS)
    data, *_, tags, _ = read_all(tmp_path / "file" / "S2.tif")
    assert tags["GEODINO_INPUT_SCALE"] == "x*0.0001 (the input's GDAL scale/offset)"
    assert np.abs(data - want).max() > 1e-3  # the stale tags: DN / 10^4, 0.1 too bright
