"""`viz attention`'s outputs: per-head and mean attention overlays, mass masks and the similarity map as PNG panels,
a georeferenced COG of the maps, and the output folder's checks (earlier maps are not overwritten silently)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodino.config import true_or_false
from geodino.errors import InputError, plural
from geodino.io import set_default_mode

if TYPE_CHECKING:
    from geodino.viz.attention import AttentionMaps


def mass_percent(mass: float) -> str:
    """The mask's mass share as a percentage for names and titles: 0.6 -> "60", 0.004 -> "0.4", 0.125 -> "12.5".
    Rounded to a whole percent, --mass 0.004 named its COG band `mask_0pct` and --mass 0.605 passed for 60 %."""
    return f"{float(mass) * 100:.6g}"


def _up(grid: np.ndarray, p: int) -> np.ndarray:
    return np.repeat(np.repeat(grid, p, axis=0), p, axis=1)


HEAT_CMAP = "inferno"
"""The colour map of every attention / similarity heat map (PNGs, panel tiles and their colour bars)."""


def heat_range(grid: np.ndarray, valid: np.ndarray | None = None) -> tuple[float, float]:
    """(lowest, highest) value of `grid` [h, w] over the `valid` cells (all when None): the ends of its colours."""
    g = np.asarray(grid, dtype=np.float64)
    ref = g[valid] if valid is not None and valid.any() else g
    return float(np.nanmin(ref)), float(np.nanmax(ref))


def _heat(grid: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """[h, w] -> uint8 RGB [h, w, 3] through matplotlib's inferno, min-max scaled over the `valid` cells (all when
    None): a nodata patch's value must not stretch the colours of the patches that hold data."""
    import matplotlib

    g = np.asarray(grid, dtype=np.float64)
    lo, hi = heat_range(g, valid)
    g = np.clip((g - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(g)
    return (matplotlib.colormaps[HEAT_CMAP](g)[..., :3] * 255).astype(np.uint8)


def _valid_patches(valid: np.ndarray | None, p: int, grid: tuple[int, int]) -> np.ndarray | None:
    """Pixel mask [H, W] -> patch mask [h, w]: a patch with at least one valid pixel holds data (None: all)."""
    if valid is None or valid.all():
        return None
    h, w = grid
    return np.asarray(np.asarray(valid)[: h * p, : w * p].reshape(h, p, w, p).any(axis=(1, 3)))  # stubs: or a scalar


def overlay(
    rgb: np.ndarray, grid: np.ndarray, p: int, alpha: float = 0.6, valid: np.ndarray | None = None
) -> np.ndarray:
    """A patch-grid map blended over the image (uint8 [H, W, 3]). With the pixel mask `valid` [H, W], nodata
    pixels keep the image's nodata colour and the colours are scaled over the patches that hold data."""
    heat = _up(_heat(grid, _valid_patches(valid, p, grid.shape)), p)[: rgb.shape[0], : rgb.shape[1]]
    out = rgb.astype(np.float32) * (1 - alpha) + heat.astype(np.float32) * alpha
    if valid is not None:
        out = np.where(np.asarray(valid)[..., None], out, rgb)
    return out.astype(np.uint8)


def _heat_png(rgb: np.ndarray, grid: np.ndarray, p: int, valid: np.ndarray | None) -> np.ndarray:
    """A single heat-map PNG's pixels: the overlay (its first W columns, one to one with the image) and, on its right,
    a colour bar of the values its colours span (`heat_bar`), as each panel tile has."""
    from geodino.viz.heat_bar import with_colour_bar

    lo, hi = heat_range(grid, _valid_patches(valid, p, grid.shape))
    return with_colour_bar(overlay(rgb, grid, p, valid=valid), lo, hi, HEAT_CMAP)


def _mask_overlay(rgb: np.ndarray, mask: np.ndarray, p: int, valid: np.ndarray | None = None) -> np.ndarray:
    keep = _up(mask, p)[: rgb.shape[0], : rgb.shape[1]]
    if valid is not None:
        keep = keep | ~np.asarray(valid)  # nodata pixels keep the image's nodata colour
    out = rgb.astype(np.float32) * np.where(keep, 1.0, 0.25)[..., None]
    return out.astype(np.uint8)


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    from geodino.io import atomic_path

    with atomic_path(path, overwrite=True) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG")


def _panel(path: Path, rgb: np.ndarray, maps: AttentionMaps, title: str, valid: np.ndarray | None = None) -> None:
    """One figure: image, mean attention, mass mask, similarity (if any) and each selected head (`valid`: the
    pixel mask, nodata left in the image's nodata colour). Each heat-map tile has a colour bar of its own value
    range (the tiles are scaled one by one: a head's brightest colour is not another's)."""
    from geodino.viz.figures import figures, save_figure

    plt = figures()

    p = maps.patch_size
    at = "attention (softmax share)"
    tiles: list[tuple[str, np.ndarray, np.ndarray | None, str]] = [
        ("image", rgb, None, ""),
        ("mean over heads", overlay(rgb, maps.mean, p, valid=valid), maps.mean, at),
        (f"{mass_percent(maps.mass)} % attention mass", _mask_overlay(rgb, maps.mask, p, valid), None, ""),
    ]
    if maps.similarity is not None:
        sim = maps.similarity
        tiles.append(("similarity to point", overlay(rgb, sim, p, valid=valid), sim, "cosine similarity"))
    tiles += [(f"head {i}", overlay(rgb, a, p, valid=valid), a, at) for i, a in zip(maps.head_ids, maps.heads)]
    cols = min(len(tiles), 6)
    rows = math.ceil(len(tiles) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.7 * rows + 0.3), squeeze=False)
    fig.subplots_adjust(hspace=0.25)  # each row's titles clear the images above
    for ax in axes.ravel():
        ax.axis("off")
    for ax in axes.ravel()[len(tiles) :]:
        fig.delaxes(ax)  # the last row's empty places: nothing to draw, lay out or tick
    for ax, (name, img, grid, label) in zip(axes.ravel(), tiles):
        ax.imshow(img)
        ax.set_title(name, fontsize=8, y=1.0)  # where matplotlib put it (no ticks above), without measuring
        if name == "similarity to point" and maps.point is not None:
            ax.plot(maps.point[0], maps.point[1], "c+", markersize=10, mew=2)
        if grid is not None:
            _colour_bar(fig, ax, grid, _valid_patches(valid, p, grid.shape), label)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path, dpi=110, format="png")


def _colour_bar(fig: Any, ax: Any, grid: np.ndarray, valid: np.ndarray | None, label: str) -> None:
    """A horizontal colour bar under `ax`: the values of `grid` its heat colours stand for (one value: one colour)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    lo, hi = heat_range(grid, valid)
    if not hi > lo:  # a flat map is drawn in the lowest colour: a bar from that value to itself is no scale
        hi = lo + max(abs(lo), 1.0) * 1e-6
    bar = fig.colorbar(
        ScalarMappable(Normalize(lo, hi), HEAT_CMAP), ax=ax, orientation="horizontal", fraction=0.05, pad=0.03
    )
    bar.ax.tick_params(labelsize=6)
    bar.ax.xaxis.get_offset_text().set_fontsize(6)
    bar.set_label(label, fontsize=6)
    bar.ax.locator_params(nbins=3)


def _write_cog(path: Path, maps: AttentionMaps, crs: Any, transform: Any) -> None:
    """Float32 COG on the patch grid: mean, mask, each selected head, similarity; band descriptions name them.
    Patches without a valid pixel are NaN, the COG's nodata (GIS tools showed their values as data)."""
    import rasterio
    from affine import Affine

    from geodino.io import atomic_path

    layers = [("attention_mean", maps.mean), (f"mask_{mass_percent(maps.mass)}pct", maps.mask.astype(np.float32))]
    layers += [(f"head_{i}", a) for i, a in zip(maps.head_ids, maps.heads)]
    if maps.similarity is not None:
        layers.append(("similarity", maps.similarity))
    h, w = maps.grid
    profile = {
        "driver": "COG",
        "height": h,
        "width": w,
        "count": len(layers),
        "dtype": "float32",
        "crs": crs,
        "transform": Affine(*tuple(transform)[:6]) @ Affine.scale(maps.patch_size),
        "compress": "deflate",
        "nodata": float("nan"),
    }
    with atomic_path(path, overwrite=True) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        for b, (name, arr) in enumerate(layers, start=1):
            band = np.asarray(arr, dtype=np.float32)
            if maps.valid is not None:
                band = np.where(maps.valid, band, np.float32(np.nan))
            dst.write(band, b)
            dst.set_band_description(b, name)
        dst.update_tags(layer=maps.layer, mass=maps.mass, patch_size=maps.patch_size, backbone=maps.info.get("spec"))


def _written_here(name: str, prefix: str) -> bool:
    """Whether `name` is a file that `write_attention` writes with `prefix` (its PNGs, COG or JSON summary)."""
    p = re.escape(prefix)
    return re.fullmatch(rf"{p}(\.json|\.tif|_(image|mean|mask|panel|similarity|head\d+)\.png)", name) is not None


def check_output_folder(out_dir: str | Path, *, prefix: str = "attention", overwrite: bool = False) -> Path:
    """Refuse (one line naming the folder and a file in it) an output folder that already holds attention maps
    of an earlier run, unless `overwrite`: a second run into the same `--out` silently replaced the first one's
    maps. Called before any work (the CLI checks before loading the backbone); returns the folder as a Path."""
    out = Path(out_dir).expanduser()
    overwrite = true_or_false(overwrite, "overwrite")  # overwrite="no" is truthy: it replaced the earlier maps
    if overwrite or not out.is_dir():
        return out
    found = sorted(f.name for f in out.iterdir() if _written_here(f.name, prefix))
    if found:
        raise InputError(
            f"output folder {out} already holds attention maps ({found[0]}, {plural(len(found), 'file')}); pass "
            "--overwrite (overwrite=True in Python) to replace them (or choose another folder)"
        )
    return out


def write_attention(
    maps: AttentionMaps,
    sample: dict[str, Any],
    out_dir: str | Path,
    *,
    prefix: str = "attention",
    overwrite: bool = False,
) -> dict[str, Path]:
    """PNGs over the image (mean, mask, each head, similarity, one panel), a COG on the patch grid when the
    sample is georeferenced, and a JSON summary; returns {name: path}. A folder that already holds attention maps
    is refused unless `overwrite` (then the earlier run's set is replaced whole: the new one is written aside and
    moved in once complete, the earlier run's maps removed just before)."""
    from geodino.io import make_dirs, sweep_temps, temp_name
    from geodino.run_lock import locked_output

    out = make_dirs(check_output_folder(out_dir, prefix=prefix, overwrite=overwrite))
    # the set is written into a hidden folder inside `out` (`.PREFIX.tmp-TAG-PID`) and moved in only when whole (the
    # earlier set removed first, the JSON last), so an interrupted overwrite never leaves maps of two runs side by side
    stage = temp_name(out / prefix)
    with locked_output(out, what="output folder"):  # one run at a time (held already by the CLI: a no-op)
        sweep_temps(out / prefix)  # the hidden folders of killed runs
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir()
        try:
            files = _write_set(maps, sample, stage, prefix)
            _swap_in(stage, out, files, prefix)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return {k: out / v.name for k, v in files.items()}


def _write_set(maps: AttentionMaps, sample: dict[str, Any], out: Path, prefix: str) -> dict[str, Path]:
    """Write the PNGs, the COG (georeferenced samples) and the JSON summary of `write_attention` into `out`."""
    from geodino.data.preview import to_rgb
    from geodino.data.sensors import get_sensor

    H, W = maps.image_size
    image = np.asarray(sample["image"])[:, :H, :W]
    valid = np.asarray(sample.get("valid", np.ones(image.shape[1:], bool)))[:H, :W]
    sensor = sample.get("sensor") or get_sensor("imagenet")
    nodata = None if valid.all() else valid  # nodata pixels stay magenta in every PNG
    rgb = to_rgb(image, sensor, nodata)
    files: dict[str, Path] = {}
    p = maps.patch_size

    def png(name: str, arr: np.ndarray) -> None:
        files[name] = out / f"{prefix}_{name}.png"
        _save_png(files[name], arr)

    png("image", rgb)
    png("mean", _heat_png(rgb, maps.mean, p, nodata))
    png("mask", _mask_overlay(rgb, maps.mask, p, nodata))
    for i, a in zip(maps.head_ids, maps.heads):
        png(f"head{i:02d}", _heat_png(rgb, a, p, nodata))
    if maps.similarity is not None:
        png("similarity", _heat_png(rgb, maps.similarity, p, nodata))
    files["panel"] = out / f"{prefix}_panel.png"
    _panel(files["panel"], rgb, maps, f"{maps.info.get('spec', '')} · block {maps.layer}", nodata)
    if sample.get("crs") and sample.get("transform") is not None:
        files["cog"] = out / f"{prefix}.tif"
        _write_cog(files["cog"], maps, sample["crs"], sample["transform"])
    summary = {
        "input": sample.get("path"),
        "bands": list(sample.get("bands") or getattr(sensor, "bands", None) or ()),
        "sensor": getattr(sensor, "name", None),
        "backbone": maps.info.get("spec"),
        "layer": maps.layer,
        "heads": maps.head_ids,
        "mass": maps.mass,
        "patch_grid": list(maps.grid),
        "patch_size": p,
        "kept_patch_share": maps.info.get("kept_share"),
        "window": sample.get("window"),  # col, row, width, height in pixels of the input; null: all of it
        "point": maps.point,  # col, row in pixels of the image the maps cover (the window's, when there is one)
        "files": {k: v.name for k, v in files.items()},
    }
    files["json"] = out / f"{prefix}.json"
    files["json"].write_text(json.dumps(summary, indent=2))
    return files


def _swap_in(stage: Path, out: Path, files: dict[str, Path], prefix: str) -> None:
    """Replace the attention set in `out` with the one written in `stage`: the earlier run's JSON and every file it
    lists (and any other file of this prefix's set, e.g. of an interrupted run) go first, then the new files move
    in, the JSON last; a stop part-way leaves part of the new set without its JSON, never a mix of two runs."""
    summary = out / f"{prefix}.json"
    earlier = _earlier_files(summary) | {f.name for f in out.iterdir() if _written_here(f.name, prefix)}
    summary.unlink(missing_ok=True)
    for name in sorted(earlier):
        (out / name).unlink(missing_ok=True)
    for path in sorted(files.values(), key=lambda f: f.name == summary.name):
        set_default_mode(path)
        os.replace(path, out / path.name)


def _earlier_files(summary: Path) -> set[str]:
    """The file names an earlier run listed in its JSON summary in this folder (removed on overwrite, with the files
    named like this set's: nothing else in the folder is touched)."""
    try:
        listed = json.loads(summary.read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return set()
    return {str(v) for v in listed.values() if isinstance(v, str) and "/" not in v} - {summary.name}
