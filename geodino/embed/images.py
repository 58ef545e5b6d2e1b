"""One embedding vector per image file of a folder: `geodino embed images DIR --backbone SPEC --out feats.parquet`.

The folder is searched recursively for image chips (PNG, JPEG, TIFF, BMP, WebP; hidden files and folders left out)
and every image becomes one row of a GeoParquet file: `path` (relative to DIR, '/'-separated), `label` (the first
sub-folder, as image-folder datasets use it; null for files directly in DIR), `width`, `height`, `bands` (of the
file as read), `embedding` (a fixed-size list of float32) and `geometry`: the image's footprint in EPSG:4326 when
the file is georeferenced (a GeoTIFF, or a PNG/JPEG with a GDAL sidecar), else null. The geometry column is always
there, so every output has one schema and opens with `geopandas.read_parquet`.

Nothing here is written a second time: pixels are read as the image-folder probes read them
(`geodino.eval.datasets.read_array`; a greyscale photo as three equal bands for a 3-band backbone, as pretraining
reads it), DN -> reflectance follows their rule (`geodino.eval.scaling.InputScaling`: an
explicit scale, else the backbone's recorded DN scale, else by dtype; decided on the first image of each dtype), and
the backbone runs through the probes' extraction (`geodino.eval.features.extract_features`: batches, resizing to
a patch multiple, the fast inference path). geodino's equivalent of LightlyTrain's
`embed(out=..., checkpoint=..., data=<folder>)`.
Each file is read, checked, scaled and described by `geodino.embed.image_files.ImageFiles`; its footprint comes
from `geodino.embed.image_footprint.footprint_4326` (re-exported here).

A run is resumable as a feature raster is: the vectors go into parts in the work folder `.NAME.partial/` beside the
output as they are computed (`geodino.embed.image_parts`), with a record of the run's identity; a rerun with the same
arguments after a kill continues after the last part (redoing the parts whose files changed since:
`geodino.embed.image_changes`) and writes the file an uninterrupted run on the files as they are now writes, one with
other arguments is refused in one line naming what differs (`--overwrite` starts again). The output is locked
(`geodino.run_lock.locked_output`) while a run writes it and its parts.

What a run says on stderr ("resuming: ...", "wrote ...", the throughput line with the bar) follows `embed_raster`'s
rule (`geodino.embed.pipeline.says`): the `geodino embed images` command always says it, a Python call only with
its progress bar, so `embed_images(..., progress=False)` is quiet; an unreadable image skipped is a warning either way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from geodino.embed.image_files import ImageFiles
from geodino.embed.image_footprint import footprint_4326
from geodino.embed.image_parts import ImageParts, PartRunner, files_digest, output_record, run_parts, write_output
from geodino.errors import ConfigError, InputError, plural
from geodino.io import removes_created_dirs

__all__ = ["ON_ERROR", "POOLS", "check_sizes", "embed_images", "footprint_4326", "header_size", "list_images"]

POOLS = ("cls", "mean", "cls+mean")
ON_ERROR = ("skip", "stop")
OUT_SUFFIXES = (".parquet", ".geoparquet")
IMAGE_BANDS_HINT = (
    "embed_images' bands are 1-based band numbers of each image (e.g. bands=[4,3,2], --bands 4,3,2); band names go "
    "to the backbone (its spec's ?bands=red,green,blue, or ?sensor=NAME)"
)
SCALE_KEYS = ("--scale", "--offset")  # the CLI flags of an explicit DN -> reflectance rule (scale=, offset= in Python)


@removes_created_dirs
def embed_images(
    folder: str | Path,
    backbone: Any,
    out: str | Path,
    *,
    pool: str = "cls",
    image_size: int = 0,
    batch_size: int = 32,
    layers: Any = "last",
    l2_normalize: bool = False,
    bands: list[int] | None = None,
    scale: float = 0.0,
    offset: float = 0.0,
    file_scale: bool = True,
    on_error: str = "skip",
    overwrite: bool = False,
    progress: bool = True,
    device: str = "cpu",
    amp: bool = False,
) -> Path:
    """Embed every image file under `folder` with `backbone` (a spec or a FrozenBackbone) into the GeoParquet `out`.

    `pool`: `cls` (the CLS token), `mean` (the mean patch token) or `cls+mean` (both concatenated, as the linear
    probes' avgpool); with several `layers` the CLS tokens (or means) of each block are concatenated, and
    `cls+mean` adds the last block's mean. `image_size` 0 feeds each image at its own size rounded up to the patch
    size (all images must then have one size); N resizes every image to N x N. `bands`: 1-based bands of each file
    to use. `scale`/`offset`: DN -> reflectance (`x * scale + offset`; 0 = the backbone's recorded DN scale, else by
    dtype; a negative scale is refused). `file_scale=False`: the scale/offset a file declares (GDAL) is not read,
    as `geodino embed`'s `file_scale`. `on_error`: `skip` (warn, leave the file out) or `stop` at an unreadable
    image. Numbers may be given as text (`batch_size="16"`), as the CLI reads them. Returns `out`. With
    `progress=False` the run is quiet on stderr (no bar, no "wrote ..." line; `geodino.embed.pipeline.run_lines`
    asks for the lines); warnings still come.

    Resumable: vectors go into parts in `.NAME.partial/` beside `out` as they are computed (`image_parts`); a rerun
    with the same arguments after a kill continues after the last part and writes the file an uninterrupted run
    writes; one with other arguments is refused in one line (`overwrite=True` starts again).
    """
    from geodino.backbones.layers import backbone_layer_indices
    from geodino.embed.backbone import parse_layers, resolve_backbone
    from geodino.embed.config import band_numbers
    from geodino.embed.memory import check_image_batch
    from geodino.eval.scaling import InputScaling, check_data_offset
    from geodino.io import check_writable
    from geodino.run_lock import locked_output

    batch_size, image_size = _check_options(pool, on_error, batch_size, image_size, out)
    bands = band_numbers(bands, hint=IMAGE_BANDS_HINT)
    scale, offset = _real(scale, "--scale", "scale"), _real(offset, "--offset", "offset")
    if scale < 0:  # was read as "unset" (the default rule): the user's factor silently ignored
        raise ConfigError(
            f"--scale {scale:g} (scale= in Python) must be a positive DN -> reflectance factor, e.g. --scale 1e-4; "
            "leave it out (scale=0 in Python) for the default: the files' declared scale/offset, else the backbone's "
            "recorded scale, else by dtype"
        )
    l2_normalize, overwrite = _bool(l2_normalize, "--l2", "l2_normalize"), _bool(overwrite, "--overwrite", "overwrite")
    file_scale = _bool(file_scale, "file_scale", "file_scale")
    progress, amp = _bool(progress, "--no-progress", "progress"), _bool(amp, "--bf16", "amp")
    check_data_offset(scale, offset, SCALE_KEYS)
    out = check_writable(out, overwrite=overwrite)
    root = Path(folder).expanduser()
    files = list_images(root)
    if not image_size:
        check_sizes(root, files)  # headers only: before the backbone loads and any image runs through it
    with locked_output(out, what="output"):  # one run at a time writes `out` and its parts
        bb = resolve_backbone(backbone, device=device, amp=amp)
        idx = backbone_layer_indices(parse_layers(layers), bb)  # no short-depth warning for a fixed one
        patch = int(bb.patch_size)
        if image_size % patch:
            raise ConfigError(
                f"--image-size {image_size} (image_size= in Python) is not a multiple of the patch size {patch} of "
                f"backbone {getattr(bb, 'spec', type(bb).__name__)}; use {-(-image_size // patch) * patch} (or 0: "
                "native size)"
            )
        if image_size:
            flags = "--image-size (0: native) or --batch-size (image_size= / batch_size= in Python)"
            check_image_batch(batch_size, int(bb.in_chans), image_size, flags)
        scaling = InputScaling(bb, scale, offset, keys=SCALE_KEYS, file_scale=file_scale)
        data = ImageFiles(root, files, bb, scaling, bands=bands, on_error=on_error, native=not image_size)
        data.prime()
        run = PartRunner(bb, data, idx, pool=pool, image_size=image_size, batch_size=batch_size, amp=amp)
        with run.accelerated() as path_name:
            ident = {
                "backbone": str(getattr(bb, "spec", type(bb).__name__)),
                "fingerprint": str(getattr(bb, "fingerprint", "")),
                "mean/std": _norm_stats(bb),
                "input": str(root.resolve()),
                "images": files_digest(files),
                "pool": pool,
                "layers": idx,
                "image_size": image_size,
                "l2_normalize": bool(l2_normalize),
                "bands": bands,
                "scale": scale,
                "offset": offset,
                "inference_path": path_name,
                **({} if file_scale else {"file_scale": False}),  # on: as runs before the switch recorded it
            }
            from geodino.embed.config import EmbedConfig
            from geodino.embed.pipeline import says

            say = says(EmbedConfig(progress=progress))  # the rule of a feature raster run, by its progress flag
            work = ImageParts(out, ident)
            parts = run_parts(run, work, overwrite=overwrite, on_error=on_error, progress=progress, say=say)
        write_output(out, files, parts, ident, say=say, record=output_record(bb))
        work.remove()
    return out


def _check_options(pool: Any, on_error: Any, batch_size: Any, image_size: Any, out: str | Path) -> tuple[int, int]:
    """Check the options before any work; returns (batch_size, image_size) as ints. Each bad value is one line
    naming the CLI flag and the Python keyword (Python callers meet these; argparse checks the CLI's choices)."""
    if not isinstance(pool, str) or pool not in POOLS:
        raise ConfigError(
            f"--pool {pool!r} (pool= in Python) is not one of {', '.join(POOLS)}; pass --pool cls (pool='cls', the "
            "default)"
        )
    if not isinstance(on_error, str) or on_error not in ON_ERROR:
        raise ConfigError(
            f"--on-error {on_error!r} (on_error= in Python) is not one of {', '.join(ON_ERROR)}; pass --on-error skip "
            "(on_error='skip', the default) or stop"
        )
    batch = _whole(batch_size, "--batch-size", "batch_size", 32)
    if batch < 1:
        raise ConfigError(
            f"--batch-size {batch} (batch_size= in Python) must be at least 1, e.g. --batch-size 32 (batch_size=32)"
        )
    size = _whole(image_size, "--image-size", "image_size", 224)
    if size < 0:
        raise ConfigError(f"--image-size {size} (image_size= in Python) must be >= 0 (0: each image at its own size)")
    if Path(out).suffix.lower() not in OUT_SUFFIXES:
        raise ConfigError(
            f"--out {out} (out= in Python): embed images writes GeoParquet; give the output a .parquet name"
        )
    return batch, size


def _whole(value: Any, flag: str, key: str, example: int) -> int:
    """`value` read as `EmbedConfig.validate` reads a whole number or its text (`geodino.config.whole_number`: 16,
    16.0, "16"), else one line naming `flag` and `key`."""
    from geodino.config import whole_number

    try:
        return whole_number(value, key, example)
    except ConfigError:
        raise ConfigError(
            f"{flag} {value!r} ({key}= in Python) must be a whole number, e.g. {flag} {example} ({key}={example})"
        ) from None


def _real(value: Any, flag: str, key: str) -> float:
    """`value` as a finite float: a number or its text ("1e-4"), as YAML and the CLI read --scale and --offset
    (`geodino.config.real_number`); else one line naming `flag` and `key`."""
    from geodino.config import real_number

    try:
        return real_number(value, key)
    except ConfigError:
        raise ConfigError(
            f"{flag} {value!r} ({key}= in Python) must be a number, e.g. {flag} 1e-4 ({key}=1e-4)"
        ) from None


def _bool(value: Any, flag: str, key: str) -> bool:
    """`value` as a bool, as YAML and the CLI read flags (`geodino.config.true_or_false`: "false" is False, where
    `bool("false")` is True); else one line naming `flag` and `key`."""
    from geodino.config import true_or_false

    try:
        return true_or_false(value, key)
    except ConfigError:
        raise ConfigError(
            f"{flag} ({key}= in Python) is true or false (True/False, 1/0, 'true'/'false'), got {value!r}"
        ) from None


def _norm_stats(bb: Any) -> list[list[float]]:
    """The backbone's input mean and std (the same weights under another ?sensor= standardise otherwise)."""
    stats = (getattr(bb, "mean", None), getattr(bb, "std", None))
    return [
        [round(float(v), 8) for v in t.flatten().tolist()] for t in stats if t is not None and hasattr(t, "flatten")
    ]


def list_images(root: Path) -> list[str]:
    """The image files under `root`, relative to it ('/'-separated, sorted); hidden files and folders left out.
    One line naming the folder when it is missing, a file, or holds no image."""
    from geodino.eval.datasets import IMAGE_EXTENSIONS, list_folder

    if not root.exists():
        raise InputError(f"folder {root} not found; pass the folder of images to embed")
    if not root.is_dir():
        raise InputError(f"{root} is a file, not a folder; pass the folder that holds the images")
    files = [
        rel.replace(os.sep, "/")
        for rel in list_folder(root)  # the probes' cached recursive listing
        if os.path.splitext(rel)[1].lower() in IMAGE_EXTENSIONS
        and not any(p.startswith(".") for p in rel.split(os.sep))
    ]
    if not files:
        kinds = ", ".join(IMAGE_EXTENSIONS)
        raise InputError(f"folder {root} holds no image files ({kinds}, searched recursively); pass a folder of images")
    return files


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of an image as `read_array` reads it, from its header (`geodino.data.headers`: no pixels
    read; a photo upright by its EXIF orientation, as read), or None when the header does not read (the read
    applies --on-error to the file)."""
    from geodino.data.headers import header_or_none

    head = header_or_none(path)
    return None if head is None else head.size


def check_sizes(root: Path, files: list[str]) -> None:
    """At native size all images must have one size: checked on the headers before any work, one line naming an
    image of another size, its size and the most common size (that of the first file among equals)."""
    from collections import Counter

    sizes = {rel: header_size(root / rel) for rel in files}
    counts = Counter(wh for wh in sizes.values() if wh is not None)
    if len(counts) < 2:
        return
    (w0, h0), n0 = counts.most_common(1)[0]  # ties: the size met first
    odd, (w, h) = next((rel, wh) for rel, wh in sizes.items() if wh is not None and wh != (w0, h0))
    example = next(rel for rel, wh in sizes.items() if wh == (w0, h0))
    n = sum(counts.values())
    raise InputError(
        f"images in {root} have different sizes: {odd} is {w}x{h} px, the most common size is {w0}x{h0} px ({n0} "
        f"of {n} images, e.g. {example}; {plural(n - n0, 'image')} of other sizes); pass --image-size N (e.g. 224; "
        "image_size=N in Python) to resize them all to N x N"
    )
