"""The files every raster product writes: a streamed COG and checked output names.

`write_cog` writes row blocks to a tiled GTiff and copies it to a COG (atomically, with a progress bar),
`check_map_outputs` refuses wrong or clashing output names before anything is written, `cog_profile`/`n_blocks`
describe the output grid; the PNG quick-looks are `quicklook.py`. Kept apart from `products.py` (what each product
computes) because classify and change write their maps through the same helpers; `products.py` re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geodino.embed.writers import EmbeddingReader
from geodino.errors import ConfigError
from geodino.io import atomic_path


def progress(items: Any, *, total: int | None, desc: str) -> Any:
    """`items` with a tqdm bar on stderr that appears only when the loop takes more than a second."""
    from tqdm.auto import tqdm

    return tqdm(items, total=total, desc=desc, unit="block", delay=1.0, leave=False)


def write_cog(
    out: Path,
    data: Any,
    profile: dict[str, Any],
    *,
    colormap: dict | None = None,
    bands: Sequence[str] = (),
    desc: str | None = None,
    total: int | None = None,
    **tags: Any,
) -> None:
    """Write blocks (an iterator of (window, array)) to a tiled GTiff, then copy it to a COG under `out`.

    `bands` are the band descriptions (what each band holds, as QGIS and gdalinfo show it). With `desc`, a progress
    bar over the `total` blocks (see `progress`)."""
    import rasterio
    import rasterio.shutil

    if desc:
        data = progress(data, total=total, desc=desc)

    with atomic_path(out, overwrite=True) as tmp:
        staging = tmp.with_name(tmp.name + ".staging.tif")
        try:
            with rasterio.open(
                staging, "w", driver="GTiff", tiled=True, blockxsize=256, blockysize=256, **profile
            ) as d:
                for window, arr in data:
                    d.write(arr, window=window)
                if colormap:
                    d.write_colormap(1, colormap)
                for i, name in enumerate(bands, start=1):
                    d.set_band_description(i, name)
                d.update_tags(**{k: str(v) for k, v in tags.items()})
            resampling = "nearest" if profile["dtype"] in ("uint8", "uint16") else "average"
            rasterio.shutil.copy(
                staging, tmp, driver="COG", compress="deflate", overviews="auto", resampling=resampling, blocksize=256
            )
        finally:
            staging.unlink(missing_ok=True)


MAP_SUFFIXES = (".tif", ".tiff")  # what the raster products write: a COG


def check_map_outputs(command: str, out: str | Path, **side: str | Path | None) -> None:
    """Refuse a product `--out` that is not a GeoTIFF name, a `--png` that is not a PNG name, and any two outputs
    that are one file (one line, before anything is written): `--out map.png` made the quick-look overwrite the COG
    and `change` then thresholded the PNG's pixels. `side` names the other outputs by their option (png, mask...)."""
    out = Path(out)
    if out.suffix.lower() not in MAP_SUFFIXES:
        raise ConfigError(
            f"--out {out}: {command} writes a GeoTIFF (COG), not {out.suffix or 'a file without suffix'}; name it "
            f"{out.with_suffix('.tif').name} (the PNG quick-look goes next to it, or where --png says)"
        )
    named = {"out": out} | {k: Path(v) for k, v in side.items() if v is not None}
    for key, suffixes in (("png", (".png",)), ("mask", MAP_SUFFIXES)):
        path = named.get(key)
        if path is not None and path.suffix.lower() not in suffixes:
            raise ConfigError(
                f"--{key} {path}: {command} writes a {'PNG' if key == 'png' else 'GeoTIFF (COG)'} there; name it "
                f"{path.with_suffix(suffixes[0]).name}"
            )
    seen: dict[Path, str] = {}
    for key, path in named.items():
        where = path.expanduser().resolve()
        label = f"--{key.replace('_', '-')}" if key in ("out", "png", "mask", "save_model") else f"the {key} file"
        if where in seen:
            raise ConfigError(
                f"{seen[where]} and {label} are the same file {path}; give each output of {command} its own name"
            )
        seen[where] = label


def n_blocks(rd: EmbeddingReader, **kw: Any) -> int:
    """How many row windows `rd.blocks(**kw)` yields (for the progress bar's total)."""
    return sum(1 for _ in rd.blocks(**kw))


def cog_profile(rd: EmbeddingReader, count: int, dtype: str, nodata: Any) -> dict[str, Any]:
    return {
        "height": rd.height,
        "width": rd.width,
        "count": count,
        "dtype": dtype,
        "crs": rd.crs,
        "transform": rd.transform,
        "nodata": nodata,
    }
