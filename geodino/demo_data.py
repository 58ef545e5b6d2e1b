"""A small synthetic multispectral scene with a known land-cover map, written by the demo and the tests.

The demo must run on a fresh machine with no download, so it paints its own scene: a 4-band (blue, green,
red, NIR) uint16 GeoTIFF in UTM with 10 m pixels, made of five land covers with distinct spectra and
textures (water, forest, cropland in oriented striped fields, urban blocks, bare soil) and a nodata corner.
The land-cover map is written beside it, so probes have labels that the pretraining never saw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("water", "forest", "cropland", "urban", "bare")
BANDS = ("blue", "green", "red", "nir")
# Mean surface reflectance per class and band (blue, green, red, nir): typical values of these covers.
SPECTRA = np.array(
    [
        [0.060, 0.055, 0.030, 0.020],  # water
        [0.030, 0.055, 0.030, 0.350],  # forest
        [0.050, 0.085, 0.060, 0.450],  # cropland
        [0.120, 0.120, 0.130, 0.180],  # urban
        [0.120, 0.150, 0.200, 0.280],  # bare
    ],
    dtype=np.float32,
)
NODATA = 0
SCALE = 1e-4  # DN -> reflectance, as Sentinel-2 L2A


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-8)


def landcover_map(size: int, seed: int = 0) -> np.ndarray:
    """A [size,size] uint8 class map: smooth regions, with a river, a town and fields."""
    rng = np.random.default_rng(seed)
    scores = np.stack([_smooth_noise(rng, size, size / 10) for _ in CLASSES])
    scores[0] -= 0.6  # water is rarer
    labels = scores.argmax(0).astype(np.uint8)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    river = np.abs(yy - (0.5 + 0.15 * np.sin(xx * 2 * np.pi * 1.3 + seed))) < 0.035
    labels[river] = 0
    town = (xx - 0.72) ** 2 + (yy - 0.3) ** 2 < 0.018
    labels[town & ~river] = 3
    return labels


def paint_scene(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Reflectance [4,H,W] float32 for a class map: class spectra plus class-specific texture."""
    rng = np.random.default_rng(seed + 1)
    h, w = labels.shape
    refl = SPECTRA[labels].transpose(2, 0, 1).copy()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # cropland: fields of 24-48 px with their own orientation, crop vigour and row stripes
    fields = (yy // 32).astype(np.int64) * 1000 + (xx // 40).astype(np.int64)
    uniq, inv = np.unique(fields, return_inverse=True)
    vigour = rng.uniform(0.6, 1.3, len(uniq)).astype(np.float32)[inv].reshape(h, w)
    angle = rng.uniform(0, np.pi, len(uniq)).astype(np.float32)[inv].reshape(h, w)
    stripes = 0.5 + 0.5 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 0.9)
    crop = labels == 2
    refl[3][crop] *= (vigour * (0.8 + 0.3 * stripes))[crop]
    refl[:3, crop] *= (1.1 - 0.2 * stripes)[crop]
    # urban: a street grid of bright roofs and dark streets
    urban = labels == 3
    streets = ((yy % 12) < 2) | ((xx % 12) < 2)
    refl[:, urban & streets] *= 0.55
    refl[:, urban & ~streets] *= rng.uniform(0.9, 1.6, (urban & ~streets).sum()).astype(np.float32)
    # forest: crown texture; water: small ripples; everything: sensor noise
    forest = labels == 1
    crowns = 1 + 0.25 * _smooth_noise(rng, h, 1.5)[:h, :w]
    refl[:, forest] *= crowns[forest]
    refl *= 1 + 0.04 * rng.standard_normal(refl.shape).astype(np.float32)
    return np.clip(refl, 0.002, 0.9).astype(np.float32)


def write_demo_scene(
    path: str | Path, *, size: int = 512, seed: int = 0, crs: str = "EPSG:32633", res: float = 10.0
) -> tuple[Path, Path]:
    """Write the scene (uint16 DN, nodata 0 in a corner) and its land-cover GeoTIFF; return both paths."""
    import rasterio
    from affine import Affine

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = landcover_map(size, seed)
    dn = np.round(paint_scene(labels, seed) / SCALE).astype(np.uint16)
    yy, xx = np.mgrid[0:size, 0:size]
    corner = (xx + yy) < size // 5  # a nodata corner, as at the edge of a satellite swath
    dn[:, corner] = NODATA
    transform = Affine(res, 0.0, 500000.0, 0.0, -res, 4_500_000.0)  # north-up, origin at the top-left corner
    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=len(BANDS),
        dtype="uint16",
        crs=crs,
        transform=transform,
        nodata=NODATA,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn)
        dst.descriptions = BANDS
    label_path = path.with_name(path.stem + "_landcover.tif")
    lab = labels.copy()
    lab[corner] = 255
    with rasterio.open(label_path, "w", **{**profile, "count": 1, "dtype": "uint8", "nodata": 255}) as dst:
        dst.write(lab[None])
    return path, label_path


def write_labelled_chips(
    scene: str | Path,
    landcover: str | Path,
    root: str | Path,
    *,
    chip: int = 32,
    per_class: int = 30,
    purity: float = 0.8,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> dict[str, int]:
    """Cut class-pure chips into ROOT/{train,test}/<class>/*.tif; train from the west, test from the east.

    Spatially disjoint splits keep overlapping chips out of both sides. Returns chip counts per class.
    """
    import rasterio
    from rasterio.windows import Window

    from geodino.data.rasters import window_affine

    rng = np.random.default_rng(seed)
    root = Path(root)
    with rasterio.open(scene) as src, rasterio.open(landcover) as lab_src:
        labels = lab_src.read(1)
        h, w = labels.shape
        split_x = int(w * (1 - test_fraction))
        counts: dict[str, int] = {}
        for split, (x0, x1) in (("train", (0, split_x - chip)), ("test", (split_x, w - chip))):
            want = per_class if split == "train" else max(4, int(per_class * test_fraction / (1 - test_fraction)))
            for ci, name in enumerate(CLASSES):
                (root / split / name).mkdir(parents=True, exist_ok=True)
                n = 0
                for attempt in range(6000):
                    if n >= want:
                        break
                    # relax the purity for rare classes rather than leave a class out of a split
                    need = purity if attempt < 3000 else 0.5 * (1 + purity) - 0.2
                    r, c = int(rng.integers(0, h - chip)), int(rng.integers(x0, max(x0 + 1, x1)))
                    win = labels[r : r + chip, c : c + chip]
                    if (win == ci).mean() < need or (win == 255).any():
                        continue
                    window = Window(c, r, chip, chip)
                    data = src.read(window=window)
                    profile = dict(
                        driver="GTiff",
                        width=chip,
                        height=chip,
                        count=src.count,
                        dtype=src.dtypes[0],
                        crs=src.crs,
                        transform=window_affine(src.transform, c, r),
                        nodata=src.nodata,
                    )
                    with rasterio.open(root / split / name / f"{name}_{r}_{c}.tif", "w", **profile) as dst:
                        dst.write(data)
                    n += 1
                counts[f"{split}/{name}"] = n
    return counts
