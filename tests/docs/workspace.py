"""The generated stand-ins for the files the documented commands name, in one working folder.

The docs use paths such as `/data/s2_scenes/`, `scene.tif`, `exports/s2_vits16.pth` and
`dinov3_vitl16_pretrain_sat493m-eadcf0ff.pth`; `build_workspace` writes small files under those names (scenes of
256 px, a few chips, feature rasters, vector files) and trains the tiny backbones the commands load through
geodino itself (`geodino pretrain` for 2 steps, `geodino export`, `geodino convert`), so every RUN command of
tests/docs/test_doc_commands.py finds what it reads. `/data/...` in a command becomes `data/...` here.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CRS = "EPSG:32633"
ORIGIN = (500000.0, 4_500_000.0)  # UTM 33N: the documented points (502560,4497440; 15.03E 40.63N) fall inside
SIZE = 320

# Added to every documented `geodino pretrain` that is run: a 2-block vit_tiny with small heads, crops and batch,
# 2 steps on the CPU, so a run takes seconds whatever recipe the config holds (the recipe's other keys still load
# and run: schedules, losses, gram, init_from).
TINY_PRETRAIN = [
    "ssl.student.arch=vit_tiny",
    # patch 16, as the recipes: at patch 8 a 512 px embed tile (the default) was 4096 tokens, now 1024
    "ssl.student.patch_size=16",
    # 6 blocks (the docs ask for --layer 5 and a 4-level DPT) and vit_tiny's own 3 heads (`--heads 0 2`)
    "ssl.student.overrides={depth: 6}",
    "ssl.student.drop_path_rate=0.0",
    *(
        f"ssl.{h}.{k}={v}"
        for h in ("dino", "ibot")
        for k, v in (("head_n_prototypes", 64), ("head_hidden_dim", 32), ("head_bottleneck_dim", 16))
    ),
    "batch_size=2",
    "num_workers=0",
    "crops.global_size=32",
    "crops.local_size=16",
    "crops.n_local=2",
    "crops.gram_size=48",
    "trainer.max_steps=2",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.strategy=auto",
    "trainer.precision=32-true",
    "checkpoint.every_n_steps=2",
    "ssl.schedules.reference_iters=1000000",  # every integer schedule length shrinks to fit the 2 steps
]


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


# geodino's memories of the warnings this process has given (each said once per process), by module
SAID_ONCE = {
    "geodino.data.loaders": "_COARSE_SAID",
    "geodino.data.images": "_warned",
    "geodino.data.cube_variables": "_ALIKE_SAID",
    "geodino.data.cube_scene": "_ASSUMED_SAID",
    "geodino.eval.folder_listing": "_WARNED",
    "geodino.eval.torchgeo_datasets": "_WARNED",
}


def fresh_process() -> None:
    """Forget the warnings geodino said once in this process, as a new `geodino` process starts: each documented
    command then warns as the user's own run of it would, whatever ran before it here (xdist orders vary)."""
    for module, name in SAID_ONCE.items():
        if module in sys.modules:
            getattr(sys.modules[module], name).clear()


def geodino(*argv: str) -> tuple[int, str, float]:
    """Run `geodino ARGV` in this process (the CLI's `main`), as a fresh process would; return (exit code, stdout +
    stderr, seconds)."""
    from geodino.cli import main

    fresh_process()
    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(list(argv))
    return rc, buf.getvalue(), time.perf_counter() - t0


def must(*argv: str) -> str:
    rc, out, _ = geodino(*argv)
    assert rc == 0, f"`geodino {' '.join(argv)}` exited {rc}:\n{out[-3000:]}"
    return out


def _smooth(c: int, seed: int, size: int = SIZE) -> np.ndarray:
    """A [C, size, size] field in [0, 1] with spatial structure (so features and clusters vary)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([np.sin(xx / (9 + 2 * k) + yy / (13 + k) + seed) for k in range(c)])
    return np.clip(0.5 + 0.35 * base + 0.15 * rng.random((c, size, size)), 0, 1)


def write_tif(path: Path, data: np.ndarray, *, bands: list[str] | None = None, nodata=None) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="GTiff", height=data.shape[1], width=data.shape[2], count=data.shape[0], dtype=str(data.dtype),
        crs=CRS, transform=from_origin(*ORIGIN, 10.0, 10.0), tiled=True, blockxsize=128, blockysize=128,
    )  # fmt: skip
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if bands:
            dst.descriptions = tuple(bands)
    return path


def s2_scene(path: Path, seed: int, size: int = SIZE) -> Path:
    """A 12-band Sentinel-2 L2A scene in DN (uint16, 10 m, nodata 0)."""
    from geodino.data.sensors import get_sensor

    bands = list(get_sensor("sentinel2_l2a").bands)
    return write_tif(path, (200 + 4000 * _smooth(len(bands), seed, size)).astype(np.uint16), bands=bands, nodata=0)


def rgb_scene(path: Path, seed: int, size: int = SIZE) -> Path:
    return write_tif(path, (255 * _smooth(3, seed, size)).astype(np.uint8))


def image_folder(root: Path, n_per_class: int = 4, size: int = 48) -> Path:
    """ROOT/<class>/<k>.png: RGB chips of two classes (dark and bright) for image sources and probes."""
    from PIL import Image

    for ci, name in enumerate(("forest", "water")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(n_per_class):
            img = (255 * (0.3 + 0.4 * ci + 0.3 * _smooth(3, 10 * ci + k, size) - 0.15)).clip(0, 255)
            Image.fromarray(img.astype(np.uint8).transpose(1, 2, 0)).save(root / name / f"{k}.png")
    return root


def vectors(root: Path) -> None:
    """fields.gpkg, labels.gpkg / checks.gpkg (column `landcover`) and examples.gpkg, inside the scenes."""
    import geopandas as gpd
    from shapely.geometry import box

    x0, y1 = ORIGIN
    cells = []
    for i in range(4):
        for j in range(4):
            xa, ya = x0 + 100 + 600 * j, y1 - 100 - 600 * i
            cells.append((box(xa, ya - 400, xa + 400, ya), ("crop", "forest", "water", "urban")[(i + j) % 4]))
    fields = gpd.GeoDataFrame({"field_id": range(len(cells))}, geometry=[g for g, _ in cells], crs=CRS)
    fields.to_file(root / "fields.gpkg")
    labels = gpd.GeoDataFrame({"landcover": [c for _, c in cells]}, geometry=[g for g, _ in cells], crs=CRS)
    labels.iloc[::2].to_file(root / "labels.gpkg")
    labels.iloc[1::2].to_file(root / "checks.gpkg")
    labels.iloc[:1].to_file(root / "examples.gpkg")


def build_workspace(root: Path) -> dict[str, float]:
    """Write every input the RUN commands read into `root`; return the seconds each expensive step took."""
    import rasterio

    times: dict[str, float] = {}
    t_start = time.perf_counter()
    shutil.copytree(ROOT / "configs", root / "configs")  # a copy: `data stats --out configs/sensors/...` writes here
    data = root / "data"
    for name, seed in (("s2_scenes/T33_a.tif", 0), ("s2_scenes/T33_b.tif", 1), ("s2/T33_c.tif", 2)):
        s2_scene(data / name, seed)
    shutil.copy(data / "s2_scenes/T33_a.tif", root / "scene.tif")
    s2_scene(root / "s2.tif", 6, size=512)  # docs/inspect_and_curate.md reads a 512 px window of it
    rgb_scene(root / "rgb_scene.tif", 7)  # for the RGB (SAT-493M-like) backbone
    s2_scene(root / "scene_after.tif", 5)
    rgb_scene(data / "scenes/rgb_a.tif", 3, size=512)  # vits16_highres.yaml tiles of 480 px
    rgb_scene(data / "sat_archive/rgb_b.tif", 4)
    image_folder(data / "my_chips")
    image_folder(data / "chips")
    image_folder(data / "my_scenes")
    image_folder(root / "chip_src", n_per_class=1, size=64)
    shutil.copy(root / "chip_src/forest/0.png", root / "chip.jpg")  # decoded by content, whatever the suffix
    with rasterio.open(data / "s2/T33_c.tif") as src:  # one file per band, as in a .SAFE product
        for b, band in enumerate(src.descriptions, 1):
            write_tif(data / f"s2_safe/S2A_T33.SAFE/T33_20240601_{band}_10m.tif", src.read([b]))
    from geodino.demo_data import write_demo_scene

    # 256 px: room for docs/pretraining.md's `ssl.student.in_chans=4` command's 64 px tiles (`tile_size: 64`)
    _, landcover = write_demo_scene(root / "demo_out/data/scene/scene.tif", size=256)
    landcover.unlink()  # as `geodino demo` does: the scene folder holds only the scene
    vectors(root)
    # an RGB archive of two small scenes for `embed archive/ ...` (the docs' arch:vit_small runs take 3 bands)
    for name, seed in (("2024-01/a.tif", 8), ("2024-02/b.tif", 9)):
        rgb_scene(root / "archive" / name, seed, size=64)
    (root / "scenes.txt").write_text("# two scenes\narchive/2024-01/a.tif\narchive/2024-02/b.tif\n")

    times["write data"] = time.perf_counter() - t_start
    with chdir(root):
        from geodino.data.vrt import stack_bands

        with rasterio.open(data / "s2/T33_c.tif") as src:  # a one-band-per-file VRT over the 12 band files
            names = list(src.descriptions)
        stack_bands({b: data / f"s2_safe/S2A_T33.SAFE/T33_20240601_{b}_10m.tif" for b in names}, "scene.vrt")
        for b, band in enumerate(("R", "G", "B"), 1):  # an RGB mosaic for the random arch:vit_small of embed.md
            with rasterio.open("rgb_scene.tif") as src:
                write_tif(root / f"rgb_bands/rgb_{band}.tif", src.read([b]))
        stack_bands({b: root / f"rgb_bands/rgb_{b}.tif" for b in ("R", "G", "B")}, "mosaic.vrt")
        t0 = time.perf_counter()
        must("data", "stats", "data/s2_scenes/", "--sensor", "sentinel2_l2a", "--out", "my_s2.yaml")
        shutil.copy("my_s2.yaml", "configs/sensors/my_s2.yaml")
        must(
            "data",
            "stats",
            "demo_out/data/scene/scene.tif",
            "--out",
            "demo_out/data/sensor.yaml",
            "--scale",
            "0.0001",
            "--band-names",
            "blue",
            "green",
            "red",
            "nir",
            "--samples",
            "16",
            "--tile-size",
            "64",
        )
        times["data stats"] = time.perf_counter() - t0
        # the two tiny backbones every other command loads: 12-band Sentinel-2 and 3-band RGB (chips)
        t0 = time.perf_counter()
        src = "data.sources=[{type: raster, paths: [data/s2_scenes/], sensor: my_s2.yaml}]"
        # TINY_PRETRAIN's 32 px crops of the recipe's 256 px tiles: the scale warning says so (the shrink is wanted)
        with pytest.warns(UserWarning, match=r"tiles of 256 px are cut into global crops of .* resized to 32 px"):
            must("pretrain", "-c", "configs/pretrain/s2_vits16.yaml", src, "output_dir=runs/s2", *TINY_PRETRAIN)
        times["pretrain s2 (2 steps)"] = time.perf_counter() - t0
        must("export", "runs/s2/checkpoints/last.ckpt", "exports/s2_vits16.pth")
        t0 = time.perf_counter()
        src = "data.sources=[{type: images, paths: [data/my_chips/], sensor: imagenet}]"
        must("pretrain", "-c", "configs/pretrain/small_vit_tiny.yaml", src, "output_dir=runs/source", *TINY_PRETRAIN)
        times["pretrain rgb (2 steps)"] = time.perf_counter() - t0
        must("export", "runs/source/checkpoints/last.ckpt", "exports/source.pth")
        Path("runs/NAME/checkpoints").mkdir(parents=True)
        shutil.copy("runs/s2/checkpoints/last.ckpt", "runs/NAME/checkpoints/last.ckpt")
        exports = {
            "exports/s2_vits16.pth": ["s2_vits16.pth", "dinov3_vits16_sat.pth"],
            "exports/source.pth": [
                "exports/teacher.pth",
                "runs/sat_vitl/export/teacher.pth",
                "dinov3_vitl16_pretrain_sat493m-eadcf0ff.pth",
                "dinov3_vitl16_pretrain_sat493m.pth",
            ],
        }
        for src_path, copies in exports.items():
            for dst in copies:
                Path(dst).parent.mkdir(parents=True, exist_ok=True)
                # a geodino export X.pth comes with its X.heads.pth, which holds its normalisation record (they were
                # looked for as X.pth.heads.pth, so every copy loaded with a "records no input normalisation"
                # warning and mean 0 / std 1 or ImageNet statistics); a released DINOv3 file comes alone
                alone = Path(dst).name.startswith("dinov3_vitl16_pretrain_")
                for suffix in (".pth",) if alone else (".pth", ".heads.pth"):
                    shutil.copy(src_path.removesuffix(".pth") + suffix, dst.removesuffix(".pth") + suffix)
        # a 4-band (blue, green, red, NIR) export for docs/integrations.md, adapted by geodino convert
        must("convert", "exports/s2_vits16.pth", "exports/backbone.pth", "--bands", "B02", "B03", "B04", "B08",
             "--sensor", "sentinel2_l2a", "--fill", "mean")  # fmt: skip
        t0 = time.perf_counter()
        for scene, outs in (
            ("scene.tif", ["features.tif", "scene_emb.tif", "before.tif", "before_emb.tif"]),
            ("scene_after.tif", ["after.tif", "after_emb.tif", "other_features.tif", "other_emb.tif"]),
        ):
            must("embed", scene, "--backbone", "exports/s2_vits16.pth", "--out", outs[0])
            for o in outs[1:]:
                shutil.copy(outs[0], o)
        times["embed x2"] = time.perf_counter() - t0
        must("embed", "classify", "features.tif", "labels.gpkg", "--column", "landcover", "--out", "landcover.tif")
    return times
