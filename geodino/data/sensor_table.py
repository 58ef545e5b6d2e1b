"""The built-in sensors: band names, aliases, DN scale and offset, and per-band statistics (in reflectance units,
after scale and offset) with where each comes from; `SENSORS` by name and `_ALIASES`, the short names
`get_sensor` also takes. `geodino.data.sensors` (`Sensor`, `get_sensor`, `list_sensors`) reads them from here."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from geodino.data.sensors import Sensor

# ---------------------------------------------------------------------------------------------------------------
# Built-in sensors. Statistics are in reflectance units (after scale/offset).
# ---------------------------------------------------------------------------------------------------------------

_S2_L1C_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
# fmt: off
_S2_ALIASES = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05", "rededge2": "B06",
    "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09", "cirrus": "B10", "swir16": "B11",
    "swir22": "B12", **{f"B{i}": f"B{i:02d}" for i in range(1, 13)},
    # HLS / TerraTorch (HLSBands) names
    "coastal_aerosol": "B01", "red_edge_1": "B05", "red_edge_2": "B06", "red_edge_3": "B07", "nir_broad": "B08",
    "nir_narrow": "B8A", "water_vapor": "B09", "swir_1": "B11", "swir_2": "B12",
}
# fmt: on
# SSL4EO-S12 v1 statistics (Wang et al. 2022), computed on 50k patches, in DN (/10000 here):
# zhu-xlab/SSL4EO-S12, src/benchmark/pretrain_ssl/datasets/SSL4EO/ssl4eo_dataset.py (S2C_* = L1C, S2A_* = L2A);
# torchgeo ships the same L1C values rounded in torchgeo/models/resnet.py (_mean_s2/_std_s2).
# fmt: off
_S2_L1C_MEAN_DN = (
    1605.58, 1390.78, 1314.87, 1363.52, 1549.44, 2091.75, 2371.72,
    2299.90, 2560.30, 830.07, 22.10, 2177.07, 1524.07,
)
_S2_L1C_STD_DN = (
    786.79, 850.35, 875.06, 1138.85, 1122.18, 1161.59, 1274.39,
    1248.43, 1345.53, 577.32, 51.15, 1336.10, 1136.54,
)
_S2_L2A_BANDS = tuple(b for b in _S2_L1C_BANDS if b != "B10")
_S2_L2A_MEAN_DN = (
    752.40, 884.30, 1144.16, 1297.47, 1624.91, 2194.64, 2422.21,
    2517.76, 2581.65, 2645.52, 2368.51, 1805.07,
)
_S2_L2A_STD_DN = (
    1108.03, 1155.15, 1183.63, 1368.11, 1370.27, 1355.55, 1416.51,
    1474.79, 1439.31, 1582.28, 1455.52, 1343.48,
)
# fmt: on

# Landsat 8/9 OLI Collection-2 Level-2 surface reflectance: reflectance = DN * 2.75e-5 - 0.2 (USGS C2 L2 guide).
# Statistics: HLS v2 surface reflectance over CONUS as used to pretrain Prithvi-EO (ibm-nasa-geospatial
# Prithvi-EO-1.0-100M config: bands B02..B07 = blue, green, red, NIR narrow, SWIR1, SWIR2), DN/10000 here.

_OLI_BANDS = ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7")
# fmt: off
_OLI_ALIASES = {
    "blue": "SR_B2", "green": "SR_B3", "red": "SR_B4", "nir": "SR_B5", "nir08": "SR_B5", "swir16": "SR_B6",
    "swir22": "SR_B7", **{f"B{i}": f"SR_B{i}" for i in range(2, 8)},
    "nir_narrow": "SR_B5", "swir_1": "SR_B6", "swir_2": "SR_B7",  # HLS / TerraTorch (HLSBands) names
}
# fmt: on
_OLI_MEAN_DN = (775.23, 1080.99, 1228.59, 2497.20, 2204.21, 1610.83)
_OLI_STD_DN = (1281.53, 1270.03, 1399.48, 1368.34, 1291.68, 1154.51)

# Landsat 4/5 TM and 7 ETM+ Collection-2 Level-2 surface reflectance: the same scale and offset as OLI, but band 1 is
# blue (OLI's band 1 is coastal aerosol), so SR_B2 is green and SR_B4 NIR here; band 6 is thermal (ST_B6, not a
# surface-reflectance band). No HLS statistics exist for TM/ETM+: each band takes OLI's values for the same band
# (blue, green, red, NIR, SWIR1, SWIR2), which the OLI order above matches one to one.
_TM_BANDS = ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7")
# fmt: off
_TM_ALIASES = {
    "blue": "SR_B1", "green": "SR_B2", "red": "SR_B3", "nir": "SR_B4", "nir08": "SR_B4", "swir16": "SR_B5",
    "swir22": "SR_B7", **{f"B{i}": f"SR_B{i}" for i in (1, 2, 3, 4, 5, 7)},
    "nir_narrow": "SR_B4", "swir_1": "SR_B5", "swir_2": "SR_B7",  # HLS / TerraTorch (HLSBands) names
}
# fmt: on

# NAIP 8-bit RGBN, statistics of the 2017 Maryland NAIP tiles in microsoft/landcover (Robinson et al., CVPR 2019,
# "Large scale high-resolution land cover mapping with multi-resolution data"), /255 here. NAIP varies by state
# and year: run `geodino data stats` on your archive for best results.
_NAIP_MEAN_DN = (72.84, 86.83, 76.78, 130.82)
_NAIP_STD_DN = (41.78, 34.66, 28.76, 58.95)

_RGB_ALIASES = {"red": "R", "green": "G", "blue": "B"}


def _div(values: Sequence[float], d: float) -> tuple[float, ...]:
    return tuple(round(v / d, 6) for v in values)


_SAT = Sensor(
    "sat493m",
    ("R", "G", "B"),
    1 / 255,
    (0.430, 0.411, 0.296),
    (0.213, 0.156, 0.143),
    True,
    None,
    rgb_bands=("R", "G", "B"),
    aliases=_RGB_ALIASES,
    source="DINOv3 SAT-493M",
)
_S2_L1C = Sensor(
    "sentinel2_l1c",
    _S2_L1C_BANDS,
    1e-4,
    _div(_S2_L1C_MEAN_DN, 1e4),
    _div(_S2_L1C_STD_DN, 1e4),
    False,
    0,
    rgb_bands=("B04", "B03", "B02"),
    aliases=_S2_ALIASES,
    source="Sentinel-2 L1C TOA (SSL4EO-S12 statistics)",
)
_LANDSAT8 = Sensor(
    "landsat8",
    _OLI_BANDS,
    2.75e-5,
    _div(_OLI_MEAN_DN, 1e4),
    _div(_OLI_STD_DN, 1e4),
    False,
    0,
    offset=-0.2,
    rgb_bands=("SR_B4", "SR_B3", "SR_B2"),
    aliases=_OLI_ALIASES,
    source="Landsat 8 OLI C2 L2 surface reflectance (HLS/Prithvi statistics)",
)
_replace = dataclasses.replace
# scale, offset, nodata and mean/std (band for band: no published TM/ETM+ statistics) are OLI's
_LANDSAT7 = _replace(
    _LANDSAT8,
    name="landsat7",
    bands=_TM_BANDS,
    rgb_bands=("SR_B3", "SR_B2", "SR_B1"),
    aliases=_TM_ALIASES,
    source="Landsat 7 ETM+ C2 L2 surface reflectance (Landsat 8 OLI HLS/Prithvi statistics of the same bands)",
)
SENSORS: dict[str, Sensor] = {
    # DINOv3 SAT-493M (Maxar 0.6 m RGB) normalisation, from the official repo (dinov3 #117: the sat models do not
    # use ImageNet statistics).
    "sat493m": _SAT,
    "imagenet": _replace(
        _SAT,
        name="imagenet",
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        source="ImageNet (web RGB, torchvision)",
    ),
    # Maxar/WorldView 8-bit RGB products: the imagery SAT-493M was built from, so the SAT-493M statistics.
    "maxar": _replace(_SAT, name="maxar", nodata=0, source="Maxar/WorldView RGB (SAT-493M statistics)"),
    "naip": _replace(
        _SAT,
        name="naip",
        bands=("R", "G", "B", "N"),
        mean=_div(_NAIP_MEAN_DN, 255),
        std=_div(_NAIP_STD_DN, 255),
        aliases={**_RGB_ALIASES, "nir": "N", "NIR": "N"},
        source="NAIP RGBN (microsoft/landcover 2017 statistics)",
    ),
    "sentinel2_l1c": _S2_L1C,
    "sentinel2_l2a": _replace(
        _S2_L1C,
        name="sentinel2_l2a",
        bands=_S2_L2A_BANDS,
        mean=_div(_S2_L2A_MEAN_DN, 1e4),
        std=_div(_S2_L2A_STD_DN, 1e4),
        aliases={k: v for k, v in _S2_ALIASES.items() if v != "B10"},
        source="Sentinel-2 L2A BOA (SSL4EO-S12 statistics)",
    ),
    "landsat8": _LANDSAT8,
    "landsat9": _replace(
        _LANDSAT8, name="landsat9", source="Landsat 9 OLI-2 C2 L2 surface reflectance (HLS/Prithvi statistics)"
    ),
    "landsat7": _LANDSAT7,
    "landsat5": _replace(
        _LANDSAT7,
        name="landsat5",
        source="Landsat 4/5 TM C2 L2 surface reflectance (Landsat 8 OLI HLS/Prithvi statistics of the same bands)",
    ),
}
_ALIASES = {
    "s2": "sentinel2_l2a",
    "s2_l2a": "sentinel2_l2a",
    "s2_l1c": "sentinel2_l1c",
    "sat": "sat493m",
    "worldview": "maxar",
    "rgb": "imagenet",
    "web": "imagenet",
    "l8": "landsat8",
    "l9": "landsat9",
    "landsat4": "landsat5",  # Landsat 4 TM: the same bands and C2 L2 scaling as Landsat 5
    "l4": "landsat5",
    "l5": "landsat5",
    "l7": "landsat7",
}
