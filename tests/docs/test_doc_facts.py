"""Facts docs/*.md state in prose that code decides (fenced commands are tests/docs/test_doc_commands.py's):
which shipped pretraining configs use torchvision's HSV hue jitter, and which suffixes a folder of rasters or
images is searched for."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _doc(name: str) -> str:
    return (ROOT / "docs" / name).read_text()


def test_data_md_names_the_configs_that_use_hsv_hue():
    """docs/data.md lists the configs with `crops.hue_space: hsv` (their Gram/high-res stages inherit it); every
    other shipped config keeps the default YIQ rotation (stored as None)."""
    from geodino.config import load_config
    from geodino.data.config import CropsConfig
    from geodino.train.config import PretrainConfig

    text = re.sub(r"\s+", " ", _doc("data.md"))
    m = re.search(r"`hsv` is torchvision's `adjust_hue`.*?use it \(([^)]*)\)", text)
    assert m, "docs/data.md no longer says which configs use the HSV hue"
    named = set(re.findall(r"`(\w+)`", m.group(1)))
    assert "`yiq`, the default" in text and CropsConfig().hue_space is None
    hsv = set()
    for path in sorted((ROOT / "configs/pretrain").glob("*.yaml")):
        if load_config(PretrainConfig, path).crops.hue_space == "hsv":
            hsv.add(path.stem)
    # a stage (vitl16_gram, vit7b16_highres, ...) inherits its base's hue; the doc names the bases
    bases = {s for s in hsv if not any(s.startswith(b + "_") for b in hsv if b != s)}
    assert named == bases, (named, hsv)


def test_embed_md_lists_the_raster_suffixes_a_folder_is_searched_for():
    from geodino.data.paths import RASTER_EXTS

    m = re.search(r"a folder \(searched recursively for `([^`]*)`", _doc("embed.md"))
    assert m, "docs/embed.md no longer lists the suffixes of a scene folder"
    assert m.group(1).split() == list(RASTER_EXTS)


def test_dense_probes_md_lists_the_raster_suffixes_read_with_rasterio():
    from geodino.eval.dense import RASTER_SUFFIXES

    m = re.search(r"Images may be GeoTIFF/COG/VRT \(`([^`]*)`", _doc("dense_probes.md"))
    assert m, "docs/dense_probes.md no longer lists the raster suffixes"
    assert m.group(1).split() == list(RASTER_SUFFIXES)
