"""A small synthetic multispectral scene with a known land-cover map, written by the demo and the tests.

The demo must run on a fresh machine with no download, so it paints its own scene: a 4-band (blue, green,
red, NIR) uint16 GeoTIFF in UTM with 10 m pixels, made of five land covers (water, forest, cropland, urban, bare
soil) and a nodata corner. The covers are built from a few shared materials, as real ones are: forest and
cropland are the same vegetation and soil at the same cover fraction, as round crowns or as rows in oriented
fields, so per-band colour statistics confuse them and only features that see shape tell them apart. That makes
the demo's probe table a test of what pretraining learned, not of colour.
The land-cover map is written beside it, so probes have labels that the pretraining never saw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("water", "forest", "cropland", "urban", "bare")
BANDS = ("blue", "green", "red", "nir")
# Surface reflectance (blue, green, red, nir) of the materials the scene is made of: typical values.
MATERIALS = {
    "vegetation": np.array([0.030, 0.060, 0.035, 0.400], dtype=np.float32),
    "soil": np.array([0.090, 0.120, 0.160, 0.240], dtype=np.float32),
    "water": np.array([0.060, 0.055, 0.030, 0.020], dtype=np.float32),
    "roof": np.array([0.130, 0.130, 0.140, 0.170], dtype=np.float32),
}
NODATA = 0
SCALE = 1e-4  # DN -> reflectance, as Sentinel-2 L2A


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-8)


def _material(rng: np.random.Generator, name: str, size: int, spread: float = 0.6) -> np.ndarray:
    """[4,size,size] reflectance of one material whose condition (moisture, vigour) drifts smoothly over the
    scene, so that no class owns one exact colour."""
    condition = 1 + spread * np.clip(_smooth_noise(rng, size, size / 12), -2.5, 2.5)
    brightness = 1 + 0.5 * spread * np.clip(_smooth_noise(rng, size, size / 12), -2.5, 2.5)
    spectrum = MATERIALS[name][:, None, None] * brightness
    spectrum[3] *= condition  # NIR follows vigour or moisture more than the visible bands do
    return spectrum.astype(np.float32)


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
    """Reflectance [4,H,W] float32 for a class map, where the classes differ by spatial structure more than by
    colour, as forest and cropland do in real 10 m imagery.

    Forest and cropland are both a mix of the same vegetation and soil at the same cover fraction (45-80 %,
    drifting over the scene): forest as round crowns, cropland as straight rows (period 6-9 px) in fields with
    their own orientation. Colour statistics of a chip therefore confuse them; a backbone that learned shapes
    does not. Urban is bright roofs on a street grid, bare is soil with mild texture, water is dark; every
    material's condition drifts smoothly, and 5 % sensor noise is added.
    """
    rng = np.random.default_rng(seed + 1)
    h, w = labels.shape
    size = max(h, w)
    veg, soil, water, roof = (_material(rng, m, size)[:, :h, :w] for m in ("vegetation", "soil", "water", "roof"))
    cover = (0.625 + 0.175 * np.clip(_smooth_noise(rng, size, size / 10), -1, 1))[:h, :w]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # cropland: fields of 32 x 40 px, each with its own row direction and row period
    fields = (yy // 32).astype(np.int64) * 1000 + (xx // 40).astype(np.int64)
    uniq, inv = np.unique(fields, return_inverse=True)
    angle = rng.uniform(0, np.pi, len(uniq)).astype(np.float32)[inv].reshape(h, w)
    period = rng.uniform(10, 14, len(uniq)).astype(np.float32)[inv].reshape(h, w)
    phase = ((xx * np.cos(angle) + yy * np.sin(angle)) / period) % 1.0
    rows = phase < cover
    # forest: crowns a few pixels wide, thresholded so that they cover the same fraction as the crop rows
    blobs = _smooth_noise(rng, size, 3.0)[:h, :w]
    ranks = np.argsort(np.argsort(blobs.ravel())).reshape(h, w) / blobs.size
    crowns = ranks > 1 - cover
    refl = np.empty((4, h, w), dtype=np.float32)
    refl[:] = np.where(labels == 2, np.where(rows, veg, soil), np.where(crowns, veg, soil))
    refl[:, labels == 0] = water[:, labels == 0]
    # urban: roofs of varying brightness on a 12 px street grid; streets darker
    urban = labels == 3
    streets = ((yy % 12) < 2) | ((xx % 12) < 2)
    blocks = (yy // 12).astype(np.int64) * 10_000 + (xx // 12).astype(np.int64)
    _, binv = np.unique(blocks, return_inverse=True)
    tone = rng.uniform(0.8, 1.5, binv.max() + 1).astype(np.float32)[binv].reshape(h, w)
    refl[:, urban] = (roof * np.where(streets, 0.55, tone))[:, urban]
    # bare soil: the soil material with a gentle texture
    bare = labels == 4
    refl[:, bare] = (soil * (1 + 0.12 * _smooth_noise(rng, size, 3)[:h, :w]))[:, bare]
    refl *= 1 + 0.05 * rng.standard_normal(refl.shape).astype(np.float32)
    return np.clip(refl, 0.002, 0.9).astype(np.float32)


def write_demo_scene(
    path: str | Path, *, size: int = 512, seed: int = 0, crs: str = "EPSG:32633", res: float = 10.0
) -> tuple[Path, Path]:
    """Write the scene (uint16 DN, nodata 0 in a corner) and its land-cover GeoTIFF; return both paths. Each is
    written under a temporary name and renamed (`geodino.io.atomic_path`): a killed demo leaves no cut-off GeoTIFF
    that a later step, or a user, would read as the scene."""
    import rasterio
    from affine import Affine

    from geodino.io import atomic_path

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
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(dn)
        dst.descriptions = BANDS
    label_path = path.with_name(path.stem + "_landcover.tif")
    lab = labels.copy()
    lab[corner] = 255
    label_profile = {**profile, "count": 1, "dtype": "uint8", "nodata": 255}
    with atomic_path(label_path) as tmp, rasterio.open(tmp, "w", **label_profile) as dst:
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
    from geodino.io import atomic_path

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
                    # atomic (a killed demo leaves no cut-off chip), not synced one by one: the demo makes them again
                    chip_path = root / split / name / f"{name}_{r}_{c}.tif"
                    with atomic_path(chip_path, durable=False) as tmp, rasterio.open(tmp, "w", **profile) as dst:
                        dst.write(data)
                    n += 1
                counts[f"{split}/{name}"] = n
    return counts
