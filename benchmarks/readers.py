"""Reader and loader throughput, measured side by side in one run.

(a) The same windows read by geodino's reader (`RasterArchive.read`: window read + valid mask; and
    `RasterArchive.sample`: + float32 DN scaling, the "+ reflectance" column) and by raw rasterio windowed reads
    on an open handle (the limit), interleaved; then torchgeo's `RasterDataset` on the first 200 of the same
    windows, one pass after the others (one dataset per file, so no reprojection is involved; it opens and merges
    per query, ~100x slower). Target: geodino (`read`) / rasterio >= 0.8. The interleaved passes are repeated
    (`--repeats`) and the table gives the median over repeats of each rate and of each ratio (a ratio is taken
    within one repeat, so both sides saw the same load: on a busy machine one repeat's ratio can be off by 0.2).
(b) The whole multi-crop SSL loader (2 workers, 2x224 + 8x96 crops) in crops/s against what one ViT-S/16
    training step consumes on this machine (forward + backward on the same crops, batch 16, also with --quick:
    several minutes on a busy 2-core machine; `--only a` skips it).

Uses ../shared/data/scenes/*.tif when present (plus a generated 13-band uint16 COG, the typical Sentinel-2
archive tile); run: `.venv/bin/python benchmarks/readers.py [--quick]`.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_cli import Parser, positive

SCENES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scenes"


def _make_s2_cog(path: Path, size: int = 2048) -> Path:
    import rasterio
    import rasterio.shutil
    from affine import Affine

    rng = np.random.default_rng(0)
    data = (rng.random((13, size, size)) * 3000 + 200).astype("uint16")
    data[:, : size // 4, : size // 4] = 0
    prof = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 13,
        "dtype": "uint16",
        "nodata": 0,
        "crs": "EPSG:32633",
        "transform": Affine(10, 0, 500000, 0, -10, 4650000),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
    }
    with rasterio.MemoryFile() as mem:
        with mem.open(**prof) as dst:
            dst.write(data)
        with mem.open() as src:
            rasterio.shutil.copy(src, path, driver="COG", blocksize=512, compress="deflate")
    return path


def _windows(paths: list[str], tile: int, n: int, seed: int = 0) -> list[tuple[int, int, int]]:
    import rasterio

    rng = np.random.default_rng(seed)
    sizes = []
    for p in paths:
        with rasterio.open(p) as src:
            sizes.append((src.width, src.height))
    out = []
    for _ in range(n):
        i = int(rng.integers(len(paths)))
        w, h = sizes[i]
        out.append((i, int(rng.integers(0, w - tile + 1)), int(rng.integers(0, h - tile + 1))))
    return out


def bench_reader(paths: list[str], tile: int, n: int, sensor: str | None, repeats: int = 1) -> dict[str, float]:
    import rasterio
    from rasterio.windows import Window

    from geodino.data.archive import RasterArchive

    wins = _windows(paths, tile, n)
    results: dict[str, float] = {}
    # raw rasterio: handles opened once, one windowed read per tile (the limit)
    handles = [rasterio.open(p) for p in paths]
    for h in handles:  # warm the OS cache for everyone
        h.read(window=Window(0, 0, tile, tile))
    archive = RasterArchive(paths, sensor=sensor, progress=False)
    _check_same_pixels(archive, handles, wins[:20], tile)
    runs = {
        "rasterio": lambda i, c, r: handles[i].read(window=Window(c, r, tile, tile)),
        "geodino": lambda i, c, r: archive.read(i, c, r, tile, tile),  # DN + valid mask (nodata, edges)
        "geodino_sample": lambda i, c, r: archive.sample(i, c, r, tile, tile),  # + float32 reflectance, geo
    }
    # Interleaved per window, with the order rotated window by window: every method sees the same load drift and
    # is first (cold GDAL block cache) equally often. Each repeat gives rates and ratios; the medians are kept.
    names = list(runs)
    rates: dict[str, list[float]] = {key: [] for key in names}
    for rep in range(max(1, repeats)):
        spent = dict.fromkeys(names, 0.0)
        for k, (i, c, r) in enumerate(wins * 2):
            for key in names[(k + rep) % 3 :] + names[: (k + rep) % 3]:
                t = time.perf_counter()
                runs[key](i, c, r)
                spent[key] += time.perf_counter() - t
        for key in names:
            rates[key].append(2 * n / spent[key])
    results.update({key: float(np.median(v)) for key, v in rates.items()})
    for key in ("geodino", "geodino_sample"):  # per-repeat ratios: both sides of one ratio ran under the same load
        ratios = [a / b for a, b in zip(rates[key], rates["rasterio"])]
        results[f"{key}_ratio"] = float(np.median(ratios))
        results[f"{key}_range"] = (min(ratios), max(ratios))
    for h in handles:
        h.close()
    try:
        results["torchgeo"] = _bench_torchgeo(paths, wins, tile)
    except Exception as exc:  # torchgeo is optional for this measurement
        print(f"  torchgeo skipped: {type(exc).__name__}: {exc}")
    return results


def _check_same_pixels(archive, handles: list, wins: list[tuple[int, int, int]], tile: int) -> None:
    """Refuse to time reads that differ: geodino's window must be rasterio's, pixel for pixel (checked on the first
    windows before timing, so the ratio compares the same work)."""
    from rasterio.windows import Window

    for i, c, r in wins:
        want = handles[i].read(window=Window(c, r, tile, tile))
        got, _ = archive.read(i, c, r, tile, tile)
        if got.shape != want.shape or not np.array_equal(got, want):
            raise SystemExit(
                f"readers.py: geodino's window (scene {i}, col {c}, row {r}, {tile} px) differs from rasterio's "
                f"({got.shape} vs {want.shape}); the ratio would compare different reads"
            )


def _bench_torchgeo(paths: list[str], wins: list[tuple[int, int, int]], tile: int) -> float:
    import rasterio
    from torchgeo.datasets import RasterDataset

    class One(RasterDataset):
        filename_glob = "*"
        is_image = True

    datasets, transforms = [], []
    for p in paths:
        datasets.append(One(paths=[p]))
        with rasterio.open(p) as src:
            transforms.append(src.transform)

    def query(i: int, c: int, r: int):
        tr = transforms[i]
        x0, y1 = tr * (c, r)
        x1, y0 = tr * (c + tile, r + tile)
        return datasets[i][x0:x1, y0:y1]["image"]

    first = query(*wins[0])  # untimed warm-up (file opened, GDAL cache), and the same window as the others read
    if tuple(first.shape[-2:]) != (tile, tile):
        raise RuntimeError(f"torchgeo returned {tuple(first.shape)} for a {tile} px window; not the same read")
    n = min(len(wins), 200)
    t = time.perf_counter()
    for i, c, r in wins[:n]:
        query(i, c, r)
    return n / (time.perf_counter() - t)


def bench_loader(paths: list[str], sensor: str, steps: int, batch: int) -> float:
    from geodino.data.crops import CropsConfig
    from geodino.data.loaders import DataConfig, SourceConfig, build_ssl_loader

    cfg = DataConfig(sources=[SourceConfig(type="raster", paths=paths, sensor=sensor, tile_size=256)])
    crops = CropsConfig()
    loader = build_ssl_loader(cfg, crops, batch_size=batch, num_workers=2, seed=0, max_steps=steps + 2, progress=False)
    it = iter(loader)
    next(it)
    next(it)  # workers started and warm
    t = time.perf_counter()
    for _ in range(steps):
        next(it)
    dt = time.perf_counter() - t
    return steps * batch * (crops.n_global + crops.n_local) / dt


def bench_step(batch: int, reps: int) -> float:
    import torch

    try:
        from geodino.models import build_model

        model = build_model("vit_small", patch_size=16)
        fwd = lambda g, loc: [o["x_norm_clstoken"] for o in model.forward_features([g, loc])]
    except Exception:
        import timm

        model = timm.create_model("vit_small_patch16_224", dynamic_img_size=True, num_classes=0)
        fwd = lambda g, loc: [model(g), model(loc)]
    model.train()
    g = torch.randn(2 * batch, 3, 224, 224)
    loc = torch.randn(8 * batch, 3, 96, 96)
    times = []
    for _ in range(reps + 1):
        t = time.perf_counter()
        outs = fwd(g, loc)
        sum(o.float().pow(2).mean() for o in outs).backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    return float(np.median(times[1:]))


def main() -> None:
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer windows and steps")
    ap.add_argument("--only", choices=["a", "b"], default=None, help="run only table (a) or (b)")
    ap.add_argument("--repeats", type=positive, default=None, help="interleaved passes in (a), medians kept (3; 5)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from versions import versions

    print(versions("geodino", "rasterio", "torchgeo", "torch"))
    n = 300 if args.quick else 1500
    tmp = Path(tempfile.mkdtemp(prefix="geodino_bench_"))
    atexit.register(shutil.rmtree, tmp, True)  # the generated 107 MB COG goes with the run
    sets: list[tuple[str, list[str], str | None, int]] = []
    scenes = sorted(str(p) for p in SCENES.glob("*.tif")) if SCENES.is_dir() else []
    rgb = [p for p in scenes if p.endswith("RGB.byte.tif")]
    if rgb:
        sets.append(("shared RGB.byte.tif (3 x uint8, 791x718)", rgb, "sat493m", 256))
    l7 = [p for p in scenes if p.endswith("L7_ETMs.tif")]
    if l7:
        sets.append(("shared L7_ETMs.tif (6 x uint8, 349x352)", l7, None, 128))
    cog = str(_make_s2_cog(tmp / "s2_like.tif"))
    sets.append(("generated S2-like COG (13 x uint16, 2048^2, deflate)", [cog], "sentinel2_l1c", 256))

    if args.only in (None, "a"):
        repeats = args.repeats or (3 if args.quick else 5)
        print(
            f"\n(a) the same windows: tiles/s (interleaved per window, order rotated, 2 passes; median of {repeats} "
            "repeats, ratios taken within a repeat)\n"
        )
        print("geodino = RasterArchive.read (window + valid mask); + reflectance = RasterArchive.sample (float32 DN")
        print("scaling, window transform, CRS); torchgeo = RasterDataset[x0:x1, y0:y1] on the first 200 of the same")
        print("windows, one pass after the interleaved ones\n")
        print(
            "| data | tile | rasterio | geodino | geodino / rasterio | + reflectance | / rasterio "
            "| torchgeo | / rasterio |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        spread = []
        for name, paths, sensor, tile in sets:
            if sensor is None:  # L7: a sensor written by `geodino data stats` style (6 anonymous bands)
                from geodino.data.sensors import Sensor, save_sensor_yaml

                s6 = Sensor("l7_etm", tuple(f"b{i}" for i in range(1, 7)), 1 / 255, (0.3,) * 6, (0.1,) * 6, False)
                sensor = str(save_sensor_yaml(s6, tmp / "l7.yaml"))
            r = bench_reader(paths, tile, n, sensor, repeats)
            tg = r.get("torchgeo", float("nan"))
            raw = r["rasterio"]
            print(
                f"| {name} | {tile} | {raw:.0f} | {r['geodino']:.0f} | {r['geodino_ratio']:.2f} "
                f"| {r['geodino_sample']:.0f} | {r['geodino_sample_ratio']:.2f} | {tg:.0f} | {tg / raw:.3f} |",
                flush=True,
            )
            (a, b), (c, d) = r["geodino_range"], r["geodino_sample_range"]
            spread.append(f"  {name.split(' (')[0]}: geodino / rasterio {a:.2f}-{b:.2f}, + reflectance {c:.2f}-{d:.2f}")
        # one repeat's ratio can be off by 0.2 on a busy machine: the range says how settled each median is
        print(f"\nratios over the {repeats} repeats (min-max):")
        print("\n".join(spread))

    if args.only in (None, "b"):
        batch = 16
        steps = 4 if args.quick else 10
        loader_paths, loader_sensor = (rgb, "sat493m") if rgb else ([cog], "sentinel2_l1c")
        crops_s = bench_loader(loader_paths, loader_sensor, steps, batch)
        step = bench_step(batch, 2 if args.quick else 3)
        need = batch * 10 / step
        print("\n(b) multi-crop loader (2 workers, 2x224 + 8x96 per image, batch 16) vs one ViT-S/16 step\n")
        print("| loader crops/s | ViT-S/16 fwd+bwd step (s) | crops/s the step consumes | loader / step |")
        print("|---|---|---|---|")
        print(f"| {crops_s:.0f} | {step:.2f} | {need:.0f} | {crops_s / need:.2f} |")


if __name__ == "__main__":
    main()
