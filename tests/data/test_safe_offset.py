"""`data stack` of Sentinel-2 SAFE products of processing baseline >= 04.00: their DN carry the offset their
MTD_MSIL2A.xml (BOA_ADD_OFFSET) / MTD_MSIL1C.xml (RADIO_ADD_OFFSET) declares, reflectance = (DN - 1000) / 10000.
The old stack wrote no rule, so every reader took DN / 10000: 0.1 too high, and an archive spanning 2022-01-25
read as two distributions. Now each reflectance band of the VRT declares the product's rule (<Scale>/<Offset>),
which embed reads as the input's GDAL scale/offset; data stats and the pretraining archive read each such VRT
(its GEODINO_STACK_RADIOMETRY tag) by its own rule into the sensor's reflectance (test_stack_rule_archive.py),
while refusing foreign tags that differ from the sensor's rule."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geodino.data.vrt import stack_scenes
from geodino.errors import InputError

from .conftest import write_tif

ORIGIN = (500000.0, 4650000.0)
IDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")


def mtd(level: str = "L2A", baseline: str = "05.10", offsets: int | None = -1000) -> str:
    """A product metadata file trimmed to the elements and nesting of ESA's (PSD 14): Product_Info's
    PROCESSING_BASELINE, Product_Image_Characteristics' quantification, offsets by band_id (none before 04.00)
    and Spectral_Information's bandId -> physicalBand."""
    l2a = level == "L2A"
    quant = (
        '<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>'
        '<AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>'
        if l2a
        else '<QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>'
    )
    tag, group = (
        ("BOA_ADD_OFFSET", "BOA_ADD_OFFSET_VALUES_LIST") if l2a else ("RADIO_ADD_OFFSET", "Radiometric_Offset_List")
    )
    listed = "".join(f'<{tag} band_id="{k}">{offsets}</{tag}>' for k in range(13))
    spectral = "".join(f'<Spectral_Information bandId="{k}" physicalBand="{b}"/>' for k, b in enumerate(IDS))
    root = f"Level-{level[1:]}_User_Product"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<n1:{root} xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-{level[1:]}.xsd">'
        f"<n1:General_Info><Product_Info><PROCESSING_LEVEL>Level-{level[1:]}</PROCESSING_LEVEL>"
        f"<PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE></Product_Info>"
        f"<Product_Image_Characteristics>{quant}"
        f"{f'<{group}>{listed}</{group}>' if offsets is not None else ''}"
        f"<Spectral_Information_List>{spectral}</Spectral_Information_List>"
        f"</Product_Image_Characteristics></n1:General_Info></n1:{root}>\n"
    )


def reflectance(n: int = 12, seed: int = 0) -> np.ndarray:
    """Reflectance x 10^4 of 3 bands (B02, B03, B04), never 0 (nodata)."""
    return np.random.default_rng(seed).integers(1, 5000, size=(3, n, n)).astype(np.int64)


def l2a_safe(root: Path, name: str, refl: np.ndarray, add: int, text: str | None, ext: str = ".tif") -> Path:
    """A SAFE L2A as unpacked: MTD_MSIL2A.xml (`text`; None: no file) at its root, B02..B04 in
    GRANULE/.../IMG_DATA/R10m (DN = reflectance x 10^4 + `add`), SCL in R20m."""
    safe = root / f"{name}.SAFE"
    img = safe / "GRANULE" / "L2A_T33UUP_A01" / "IMG_DATA"
    for band, dn in zip(("B02", "B03", "B04"), refl, strict=True):
        _write(img / "R10m" / f"T33UUP_20240101T100031_{band}_10m{ext}", (dn + add)[None].astype(np.uint16))
    scl = np.full((1, refl.shape[1] // 2, refl.shape[2] // 2), 4, np.uint8)
    write_tif(_mk(img / "R20m" / "T33UUP_20240101T100031_SCL_20m.tif"), scl, origin=ORIGIN, res=20.0)
    if text is not None:
        (safe / "MTD_MSIL2A.xml").write_text(text)
    return safe


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _write(path: Path, data: np.ndarray) -> None:
    if path.suffix == ".tif":
        write_tif(_mk(path), data, origin=ORIGIN)
        return
    tif = write_tif(_mk(path.with_suffix(".tif")), data, origin=ORIGIN)
    import rasterio.shutil

    with rasterio.open(tif) as src:  # JPEG 2000 as ESA ships it (JP2OpenJPEG writes by copy)
        rasterio.shutil.copy(src, path, driver="JP2OpenJPEG", QUALITY="100", REVERSIBLE="YES")
    tif.unlink()


def read_reflectance(vrt: Path) -> np.ndarray:
    """Bands 1-3 as a reader of declared rules takes them: DN * scale + offset."""
    with rasterio.open(vrt) as src:
        dn = src.read([1, 2, 3]).astype(np.float64)
        return dn * np.array(src.scales[:3])[:, None, None] + np.array(src.offsets[:3])[:, None, None]


def test_a_baseline_05_product_declares_its_offset_in_the_vrt(tmp_path):
    refl = reflectance()
    l2a_safe(tmp_path / "root", "S2B_MSIL2A_20240101T100031_N0510_R122_T33UUP_20240101T120000", refl, 1000, mtd())
    lines: list[str] = []
    (vrt,) = stack_scenes(tmp_path / "root", ["B02", "B03", "B04", "SCL"], tmp_path / "vrt", say=lines.append)
    with rasterio.open(vrt) as src:
        assert src.scales == (1e-4, 1e-4, 1e-4, 1.0)  # SCL: class codes, no rule
        assert src.offsets == (-0.1, -0.1, -0.1, 0.0)
        assert src.tags()["GEODINO_STACK_RADIOMETRY"] == (
            "(DN - 1000) / 10000 (MTD_MSIL2A.xml of Sentinel-2 L2A, processing baseline 05.10)"
        )
    np.testing.assert_allclose(read_reflectance(vrt), refl / 1e4, atol=1e-9)
    assert lines == [
        "Sentinel-2 reflectance as each product's metadata declares it, written as the VRT bands' scale/offset: 1 "
        "scene (DN - 1000) / 10000 (S2B_MSIL2A_20240101T100031_N0510_R122_T33UUP_20240101T120000.SAFE/MTD_MSIL2A.xml "
        "of Sentinel-2 L2A, processing baseline 05.10)"
    ]
    from geodino.data.stats_first import first_declared

    assert first_declared([str(vrt)], ()) == ((1e-4,) * 3 + (1.0,), (-0.1,) * 3 + (0.0,))  # data stats' rule


def test_products_on_both_sides_of_the_baseline_change_read_as_one_reflectance(tmp_path):
    """The same ground before 04.00 (no offsets listed, DN / 10000) and after (DN + 1000): equal reflectance; the
    old stack read the second 0.1 higher. Each VRT declares its product's rule, so mixing them is no mix of rules
    declared and not (which embed refuses)."""
    refl = reflectance(seed=1)
    l2a_safe(tmp_path / "root", "S2A_MSIL2A_20210601_N0300", refl, 0, mtd(baseline="03.00", offsets=None))
    l2a_safe(tmp_path / "root", "S2A_MSIL2A_20230601_N0509", refl, 1000, mtd(baseline="05.09"))
    lines: list[str] = []
    old, new = stack_scenes(tmp_path / "root", ["B02", "B03", "B04"], tmp_path / "vrt", say=lines.append)
    a, b = read_reflectance(old), read_reflectance(new)
    np.testing.assert_allclose(a, refl / 1e4, atol=1e-9)
    np.testing.assert_allclose(b, a, atol=1e-9)
    with rasterio.open(old) as src:
        assert src.scales == (1e-4,) * 3 and src.offsets == (0.0,) * 3
    assert (
        "1 scene DN / 10000 (S2A_MSIL2A_20210601_N0300.SAFE/MTD_MSIL2A.xml of Sentinel-2 L2A, processing baseline "
        "03.00); 1 scene (DN - 1000)" in (lines[0])
    )


def test_l1c_radio_add_offset_and_jp2_band_files(tmp_path):
    """L1C declares RADIO_ADD_OFFSET and QUANTIFICATION_VALUE; band files as ESA ships them (JPEG 2000)."""
    with rasterio.Env() as env:
        if "JP2OpenJPEG" not in env.drivers():
            pytest.skip("this GDAL has no JPEG 2000 driver")
    refl = reflectance(n=8, seed=2)
    safe = tmp_path / "root" / "S2A_MSIL1C_20240101_N0510.SAFE"
    img = safe / "GRANULE" / "L1C_T33UUP_A01" / "IMG_DATA"
    for band, dn in zip(("B02", "B03", "B04"), refl, strict=True):
        _write(img / f"T33UUP_20240101T100031_{band}.jp2", (dn + 1000)[None].astype(np.uint16))
    (safe / "MTD_MSIL1C.xml").write_text(mtd("L1C", "05.10"))
    (vrt,) = stack_scenes(tmp_path / "root", ["B02", "B03", "B04"], tmp_path / "vrt")
    np.testing.assert_allclose(read_reflectance(vrt), refl / 1e4, atol=1e-9)
    with rasterio.open(vrt) as src:
        assert "MTD_MSIL1C.xml of Sentinel-2 L1C" in src.tags()["GEODINO_STACK_RADIOMETRY"]


def test_a_baseline_04_product_listing_no_offsets_is_refused_before_any_vrt(tmp_path):
    """Its DN carry an offset the file does not give: refused in one line naming the file and the ways out."""
    l2a_safe(tmp_path / "root", "a_N0400", reflectance(), 0, mtd(baseline="04.00"))
    l2a_safe(tmp_path / "root", "b_N0400", reflectance(), 1000, mtd(baseline="04.00", offsets=None))
    with pytest.raises(InputError) as err:
        stack_scenes(tmp_path / "root", ["B02", "B03", "B04"], tmp_path / "vrt")
    line = str(err.value)
    assert "\n" not in line and re.search(r"b_N0400.SAFE/MTD_MSIL2A.xml is of processing baseline 04.00", line)
    assert "lists no BOA_ADD_OFFSET" in line and "re-download the product's metadata" in line
    assert not (tmp_path / "vrt").exists()


def test_band_files_outside_a_safe_declare_nothing(tmp_path):
    """No metadata, nothing known: stored as before; ESA-named band files get one line saying so and how to pass
    the rule, other files none."""
    refl = reflectance(n=8)
    for folder, stem in (("s1", "T33UUP_20240101T100031_{}_10m"), ("s2", "x_{}")):
        for band, dn in zip(("B02", "B03", "B04"), refl, strict=True):
            write_tif(_mk(tmp_path / "root" / folder / f"{stem.format(band)}.tif"), dn[None].astype("uint16"))
    lines: list[str] = []
    vrts = stack_scenes(tmp_path / "root", ["B02", "B03", "B04"], tmp_path / "vrt", say=lines.append)
    for vrt in vrts:
        with rasterio.open(vrt) as src:
            assert src.scales == (1.0,) * 3 and src.offsets == (0.0,) * 3
            assert "GEODINO_STACK_RADIOMETRY" not in src.tags()
    (line,) = lines
    assert line.startswith(f"1 scene of Sentinel-2 band files outside a SAFE (e.g. {tmp_path / 'root' / 's1'}, no ")
    assert "band_scale=[0.0001] band_offset=[-0.1] (embed) or a sensor YAML of offset: -0.1 (pretraining)" in line
    lines.clear()
    stack_scenes(tmp_path / "root" / "s2", ["B02", "B03", "B04"], tmp_path / "vrt2", say=lines.append)
    assert lines == []


def test_an_mtd_outside_a_safes_layout_is_no_products_word_on_the_band_files_below_it(tmp_path):
    """The MTD counts only where a SAFE keeps it: in the .SAFE folder, or beside the GRANULE/ folder of an unpacked
    SAFE renamed; one copied into (or above) a folder of band files gave them all its product's rule. The line names
    each MTD by its path under the stacked root ("e.g." for a kind of several scenes)."""
    refl = reflectance(n=8)
    root = tmp_path / "root"
    (root / "MTD_MSIL2A.xml").parent.mkdir(parents=True)
    (root / "MTD_MSIL2A.xml").write_text(mtd())  # copied beside the scene folders: no SAFE's
    for scene in ("s1", "s2"):
        for band, dn in zip(("B02", "B03", "B04"), refl, strict=True):
            write_tif(_mk(root / scene / f"T33UUP_20240101T100031_{band}_10m.tif"), dn[None].astype("uint16"))
    (root / "s2" / "MTD_MSIL2A.xml").write_text(mtd())  # and one beside the band files
    for name in ("renamed_a", "renamed_b"):  # unpacked SAFEs without their .SAFE name: found by GRANULE/
        l2a_safe(root, "x", refl, 1000, mtd()).rename(root / name)
    lines: list[str] = []
    vrts = stack_scenes(root, ["B02", "B03", "B04"], tmp_path / "vrt", say=lines.append)
    offsets = {}
    for vrt in vrts:
        with rasterio.open(vrt) as src:
            offsets[vrt.stem.split("_")[0]] = src.offsets
    assert offsets == {"s1": (0.0,) * 3, "s2": (0.0,) * 3, "renamed": (-0.1,) * 3}, offsets
    (line,) = lines
    assert "2 scenes (DN - 1000) / 10000 (e.g. renamed_a/MTD_MSIL2A.xml of Sentinel-2 L2A, processing" in line, line
    assert "; 2 scenes of Sentinel-2 band files outside a SAFE" in line, line


def test_embed_reads_the_stacked_safe_by_its_declared_rule(tmp_path, capsys):
    """End to end: `data stack` says the rule, and `embed` of its VRT says it reads the VRT's declared rule."""
    from geodino import cli

    l2a_safe(tmp_path / "root", "S2B_MSIL2A_N0510", reflectance(n=32), 1000, mtd())
    out = tmp_path / "vrt"
    assert cli.main(["data", "stack", str(tmp_path / "root"), "--bands", "B02,B03,B04", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "1 scene (DN - 1000) / 10000 (S2B_MSIL2A_N0510.SAFE/MTD_MSIL2A.xml of Sentinel-2 L2A, processing" in said
    (vrt,) = out.glob("*.vrt")
    spec = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
    run = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1"]
    assert cli.main(["embed", str(vrt), "-b", spec, "--out", str(tmp_path / "f.tif"), *run]) == 0
    lines = re.findall(r"geodino: input DN -> reflectance .*", capsys.readouterr().err)
    assert lines == ["geodino: input DN -> reflectance x*0.0001-0.1 (declared by the input: its GDAL scale/offset)"]


def test_baseline_text_band_names_and_the_rule_a_stac_items_properties_imply(tmp_path):
    from geodino.data.s2_product import band_key, baseline_has_offset, read_product_metadata, stac_baseline_rule

    (tmp_path / "MTD_MSIL2A.xml").write_text(mtd())
    rule = read_product_metadata(tmp_path / "MTD_MSIL2A.xml")
    assert rule.per_band(["B8A", "B12", "B1", "SCL"]) == [(1e-4, -0.1)] * 3 + [None]

    assert [baseline_has_offset(b) for b in ("04.00", "05.09", "N0510", 5.09, "03.01", "02.14", "latest")] == [
        True,
        True,
        True,
        True,
        False,
        False,
        None,
    ]
    assert [band_key(n) for n in ("B2", "b02", "B8A", "B02_10m", "B13", "B9A", "SCL", "red")] == [
        "B02",
        "B02",
        "B8A",
        "B02",
        None,
        None,
        None,
        None,
    ]
    assert stac_baseline_rule({"s2:processing_baseline": "05.09"}) == (
        (1e-4, -0.1),
        "its STAC item's s2:processing_baseline 05.09",
    )
    v0 = {"sentinel:processing_baseline": "04.00", "sentinel:boa_offset_applied": True}  # Earth Search v0
    assert stac_baseline_rule(v0) == (
        (1e-4, 0.0),
        "its STAC item's sentinel:processing_baseline 04.00 and sentinel:boa_offset_applied",
    )
    assert stac_baseline_rule({"platform": "landsat-8"}) is None
