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

A run is resumable as a feature raster is: the vectors go into parts in the work folder `.NAME.partial/` beside the
output as they are computed (`geodino.embed.image_parts`), with a record of the run's identity; a rerun with the same
arguments after a kill continues after the last part and writes the file an uninterrupted run writes, one with
other arguments is refused in one line naming what differs (`--overwrite` starts again). The output is locked
(`geodino.run_lock.locked_output`) while a run writes it and its parts.

What a run says on stderr ("resuming: ...", "wrote ...", the throughput line with the bar) follows `embed_raster`'s
rule (`geodino.embed.pipeline.says`): the `geodino embed images` command always says it, a Python call only with
its progress bar, so `embed_images(..., progress=False)` is quiet; an unreadable image skipped is a warning either way.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.paths import TIFF_EXTS
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
    dtype; a negative scale is refused). `on_error`: `skip` (warn, leave the file out) or `stop` at an unreadable
    image. Numbers may be given as text (`batch_size="16"`), as the CLI reads them. Returns `out`. With
    `progress=False` the run is quiet on stderr (no bar, no "wrote ..." line; `geodino.embed.pipeline.run_lines`
    asks for the lines); warnings still come.

    Resumable: vectors go into parts in `.NAME.partial/` beside `out` as they are computed (`image_parts`); a rerun
    with the same arguments after a kill continues after the last part and writes the file an uninterrupted run
    writes; one with other arguments is refused in one line (`overwrite=True` starts again).
    """
    from geodino.backbones import layer_indices
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
            "leave it out (scale=0 in Python) for the default: the backbone's recorded scale, else by dtype"
        )
    l2_normalize, overwrite = _bool(l2_normalize, "--l2", "l2_normalize"), _bool(overwrite, "--overwrite", "overwrite")
    progress, amp = _bool(progress, "--no-progress", "progress"), _bool(amp, "--bf16", "amp")
    check_data_offset(scale, offset, SCALE_KEYS)
    out = check_writable(out, overwrite=overwrite)
    root = Path(folder).expanduser()
    files = list_images(root)
    if not image_size:
        check_sizes(root, files)  # headers only: before the backbone loads and any image runs through it
    with locked_output(out, what="output"):  # one run at a time writes `out` and its parts
        bb = resolve_backbone(backbone, device=device, amp=amp)
        idx = layer_indices(parse_layers(layers), int(bb.n_blocks))
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
        scaling = InputScaling(bb, scale, offset, keys=SCALE_KEYS)
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
    return [[round(float(v), 8) for v in t.flatten().tolist()] for t in stats if hasattr(t, "flatten")]


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


class ImageFiles:
    """The image files as probe samples for `extract_features`: `image` (reflectance [C,H,W]) and `index` (the
    file's position, or -1 for a file skipped as unreadable: a zero image of the first image's shape stands in and
    its row is dropped after). Runs in the main process (num_workers=0), so `info` and `failed` fill as it is read."""

    def __init__(
        self,
        root: Path,
        files: list[str],
        backbone: Any,
        scaling: Any,
        *,
        bands: list[int] | None,
        on_error: str,
        native: bool,
    ) -> None:
        self.root, self.files, self.backbone, self.scaling = root, files, backbone, scaling
        self.select, self.on_error, self.native = [int(b) for b in bands or []], on_error, native
        self.name, self.split, self.key = str(root), "images", ""  # key "": extract_features keeps no cache
        self.bands = [f"b{i + 1}" for i in range(int(backbone.in_chans))]
        self.rgb = int(backbone.in_chans) == 3  # greyscale photos read as RGB for an RGB backbone, as pretraining
        self.info: list[dict[str, Any] | None] = [None] * len(files)
        self.failed: dict[int, str] = {}
        self.rules: dict[str, tuple[Any, Any, str]] = {}  # dtype -> the DN -> reflectance rule its first image got
        self.dtypes: dict[int, str] = {}  # file index -> its dtype, for the rules a part of the run met
        self.ref: tuple[int, tuple[int, ...]] | None = None  # (index, shape [C,H,W]) of the first readable image
        self._first: Any = None

    def __len__(self) -> int:
        return len(self.files)

    def prime(self) -> None:
        """Settle the DN -> reflectance rule for every image at once (`_settle`), then read up to the first
        readable image (its shape is the reference); one line when none reads. Without --bands, a folder whose
        images differ in band count as read (a 4-band TIFF among RGB photos) is one line naming one, from the headers
        (`data.images.dataset_bands`), before any image runs through the backbone."""
        from geodino.data.images import dataset_bands

        if not self.select:
            dataset_bands([self.root / f for f in self.files], f"folder {self.root}", rgb=self.rgb)
        self._settle()
        for i in range(len(self.files)):
            x = self._load(i)
            if x is not None:
                self._first = x
                return
        shown = ", ".join(self.files[:3]) + (", ..." if len(self.files) > 3 else "")
        what = "the image file" if len(self.files) == 1 else f"none of the {len(self.files)} image files"
        verb = "could not be read" if len(self.files) == 1 else "could be read"
        raise InputError(f"{what} in {self.root} {verb} ({shown})")

    def _settle(self) -> None:
        """One rule per dtype and band count for the whole folder (`InputScaling.settle`, as the probes), not
        the rule of a dtype's first image: with a backbone recording 8-bit DN, a dark 16-bit first image (max <=
        255) set x/255 for every 16-bit image after it, 39x brighter than x/10000. Files that do not read are left
        to `_load` (skipped or stopped there, as `on_error` says)."""
        from geodino.eval.datasets import read_array

        def read(path: Path) -> tuple[np.ndarray, None]:
            try:
                return read_array(path, self.rgb), None
            except InputError:
                return np.zeros((0, 0, 0), dtype=np.uint8), None  # an empty uint8 group: decides nothing

        bands = [b - 1 for b in self.select] or None
        self.scaling.settle([self.root / f for f in self.files], read, bands)
        self.rules.clear()

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        assert self.ref is not None, "prime() first"
        if self.ref[0] == i and self._first is not None:
            x = self._first
        elif i in self.failed:
            x = None
        else:
            x = self._load(i)
        if x is None:
            return {"image": torch.zeros(self.ref[1]), "index": torch.tensor(-1)}
        return {"image": x, "index": torch.tensor(i)}

    def _load(self, i: int) -> Any:
        """Reflectance [C,H,W] of file `i`, or None when it cannot be read and on_error is skip (warned)."""
        import torch

        from geodino.eval.datasets import read_array

        path = self.root / self.files[i]
        try:
            arr = read_array(path, self.rgb)
        except InputError as exc:
            if self.on_error == "stop":
                raise InputError(f"{exc}, or pass --on-error skip (on_error='skip' in Python) to leave it out") from exc
            cause = exc.__cause__ or exc
            why = type(cause).__name__ if str(path) in str(cause) else f"{type(cause).__name__}: {cause}"
            warnings.warn(
                f"skipped unreadable image {path} ({why}); --on-error stop (on_error='stop' in Python) stops at such "
                "files",
                stacklevel=2,
            )
            self.failed[i] = str(cause)
            return None
        n_file = int(arr.shape[0])
        if self.select:
            bad = [b for b in self.select if not 1 <= b <= n_file]
            if bad:
                raise InputError(
                    f"--bands {','.join(map(str, self.select))} asks for band {bad[0]} but {path} has "
                    f"{plural(n_file, 'band')} (bands are 1-based); choose bands 1..{n_file} (--bands, bands=[...] "
                    "in Python)"
                )
            arr = arr[[b - 1 for b in self.select]]
        self._check(arr, path)
        dtype = self.dtypes[i] = arr.dtype.str
        if dtype not in self.rules:  # the folder's rule for this dtype and band count (settled in `prime`)
            self.rules[dtype] = self.scaling.rule(arr)
        scale, offset, _ = self.rules[dtype]
        x = arr.astype(np.float32) * np.asarray(scale, dtype=np.float32)
        if np.any(offset):
            x = x + np.asarray(offset, dtype=np.float32)
        h, w = arr.shape[-2:]
        self.info[i] = {"width": int(w), "height": int(h), "bands": n_file, "geometry": footprint_4326(path)}
        if self.ref is None:
            self.ref = (i, tuple(arr.shape))
        return torch.nan_to_num(torch.from_numpy(np.ascontiguousarray(x)))

    def _check(self, arr: np.ndarray, path: Path) -> None:
        """Bands against the backbone, size against the first image at native size: always a stop (not a corrupt
        file: a setting to change)."""
        n, want = int(arr.shape[0]), int(self.backbone.in_chans)
        if n != want:
            raise InputError(band_message(self.backbone, n, path, selected=bool(self.select)))
        if self.native and self.ref is not None and tuple(arr.shape[-2:]) != self.ref[1][-2:]:
            (h0, w0), (h, w) = self.ref[1][-2:], arr.shape[-2:]
            raise InputError(
                f"images in {self.root} have different sizes ({self.files[self.ref[0]]} is {w0}x{h0} px, "
                f"{path.relative_to(self.root).as_posix()} {w}x{h}); pass --image-size N (e.g. 224; image_size=N in "
                "Python) to resize them all to N x N"
            )

    def rules_text(self) -> str:
        """The DN -> reflectance rules used, '; '-joined, in the order met."""
        return "; ".join(dict.fromkeys(text for _, _, text in self.rules.values())) or "none (no image read)"


def band_message(backbone: Any, n: int, path: Path, *, selected: bool) -> str:
    """One line for an image whose band count differs from the backbone's: select bands, or adapt the backbone
    (the probes' `check_bands`, worded for this command's flags)."""
    want = int(backbone.in_chans)
    spec = str(getattr(backbone, "spec", "the backbone"))
    what = "--bands selects" if selected else "has"
    select = ""
    if n > want:
        first = ",".join(map(str, range(1, want + 1)))
        select = (
            f"select {plural(want, 'band')} with --bands (1-based, e.g. --bands {first}), bands=[{first}] in "
            "Python, or "
        )
    adapted = f"{spec}{'&' if '?' in spec else '?'}bands={n}"
    return (
        f"{path} {what} {plural(n, 'band')} but backbone {spec} takes {want}; {select}adapt the backbone's patch "
        f"embedding to {plural(n, 'band')} (--backbone '{adapted}', load_backbone(spec, bands={n}) in Python)"
    )


def footprint_4326(path: Path) -> Any:
    """The image's footprint in EPSG:4326 (`geodino.data.footprints.footprint`: the outline of its pixels, split at
    the antimeridian), or None when it is not georeferenced (no CRS, or an identity transform: pixel coordinates).
    TIFFs, and PNG/JPEG with a GDAL sidecar (`.aux.xml` or a world file), are asked; a header that does not read
    counts as not georeferenced, a CRS that cannot be placed on the map is warned about."""
    suffix = path.suffix.lower()
    if suffix not in TIFF_EXTS and not _has_sidecar(path):
        return None
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    from geodino.data.footprints import footprint
    from geodino.data.rasters import SceneInfo

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if src.crs is None or src.transform.is_identity:
                    return None
                scene = SceneInfo(
                    path=str(path),
                    crs=src.crs.to_wkt(),
                    transform=tuple(src.transform)[:6],
                    width=src.width,
                    height=src.height,
                    count=src.count,
                    dtype=src.dtypes[0],
                    nodata=src.nodata,
                    band_names=(),
                    band_indexes=tuple(range(1, src.count + 1)),
                )
    except Exception:  # rasterio raises many kinds; the pixels read, so the image is kept without a footprint
        return None
    geom, why = footprint(scene, "EPSG:4326")
    if geom is None:
        warnings.warn(f"{path} gets no footprint (null geometry): {why}", stacklevel=2)
    return geom


def _has_sidecar(path: Path) -> bool:
    """A GDAL `.aux.xml` or a world file (`.pgw`, `.pngw`, `.jgw`, `.jpgw`, `.wld`) next to the image."""
    ext = path.suffix.lower()[1:]
    names = [path.name + ".aux.xml"]
    if ext:
        names += [f"{path.stem}.{ext[0]}{ext[-1]}w", f"{path.stem}.{ext}w", f"{path.stem}.wld"]
    return any((path.parent / n).exists() for n in names)
