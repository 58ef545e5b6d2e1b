"""`geodino.pretrain(data, out)` and `geodino.distill(teacher, data, out)`: pretraining and distillation in one call
from Python, as LightlyTrain's `train(out=, data=, model=)` and `distill(...)`.

Each builds the run's config from a shipped recipe (`small_vit_tiny` / `small_vit_tiny_half` by default) and a data
folder, and runs `geodino.train.pretrain.pretrain` / `geodino.train.distill.distill` on it: the same run, folder
layout and export as `geodino pretrain|distill -c RECIPE 'data.sources=[...]' output_dir=OUT`. Anything else is a
dotted override, as on the command line.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from geodino.errors import InputError, MissingBandError, one_line, plural

__all__ = ["distill", "pretrain", "source_of"]


ROUTE = "other data: overrides=['data.sources=[{type: ..., paths: [...]}]'] (docs/data.md, Sources)"
WHOLE = "which are read with all their sensor's bands; leave bands out"


class _Header(NamedTuple):
    """What `_kinds` keeps of a georeferenced raster's header, read once while deciding the source's kind: its band
    count and first dtype (the 8-bit RGB default sensor) and band descriptions (`_check_raster_bands` names the bands
    from them as the raster source does; `count` and `descriptions` are the attributes its rule reads)."""

    path: str
    count: int  # type: ignore[assignment]  # the raster source's attribute name (shadows tuple.count on purpose)
    dtype: str
    descriptions: tuple[str | None, ...]
    colours: tuple[str, ...] = ()  # the bands' colour interpretation (red/green/blue names an RGB file's bands)


def source_of(
    data: str | Path | Sequence[str | Path],
    sensor: str | None = None,
    tile_size: int | None = None,
    bands: str | Sequence[str] | None = None,
) -> str:
    """The `data.sources=[...]` override for a folder (or file list, glob) of images, rasters or tar shards, or for
    datacubes: `cube` for Zarr stores and NetCDF files (each named, or a folder holding only such), `tar` for
    WebDataset-style `.tar` shards (a folder, glob or list of them), `raster` when the files are georeferenced
    rasters (GeoTIFF, VRT, JP2 with a CRS: tiles cut by the archive reader), else `images` (JPEG, PNG, or TIFF chips
    without a CRS), decided per file from its header; `sensor` names the data's sensor (a built-in name or a sensor
    YAML from `geodino data stats`; without it images and shards use ImageNet statistics and 3-band 8-bit rasters
    `sat493m`, named in the source so that the export records it); `tile_size`: the tiles cut from rasters or cubes,
    in pixels (the reader's default, 256, without it); `bands`: band names (a list or "red,nir") that rasters or
    cubes are read as, in that order (the source's `bands:`, matched against the files' band names or the sensor's
    aliases; a name the data lacks is refused when the source opens, naming the file and its bands). Data mixing
    kinds (rasters and chips, shards and loose files, cubes and files), or `tile_size` / `bands` for chips or shards
    (read whole, with their sensor's bands), is refused in one line; so is data of no kind, naming the
    `overrides=['data.sources=[...]']` route. A raster-extension file whose header does not read counts as neither
    (the source's reader stops at it or skips it per its on_error) unless none reads. Hidden files and folders
    (`.DS_Store`, macOS `._x.jpg`, `.thumbnails/`) are left out of a folder, as an images source leaves them out."""
    return _source(data, sensor, tile_size, bands)[0]


def _source(
    data: str | Path | Sequence[str | Path],
    sensor: str | None,
    tile_size: int | None,
    bands: str | Sequence[str] | None,
) -> tuple[str, list[_Header], str | None]:
    """`source_of`'s override, with the headers of its georeferenced rasters ([] for other data) and the sensor the
    source names (the given one, or the 8-bit RGB default), which `_check_raster_bands` names their bands with."""
    from geodino.data.band_args import parse_band_names
    from geodino.data.paths import IMAGE_EXTS, RASTER_EXTS, resolve_paths

    hint = f"pass a folder of images, rasters or .tar shards, Zarr stores or NetCDF files, a glob or a list; {ROUTE}"
    names = parse_band_names(bands, "bands")  # "red,nir" split; band numbers refused
    items = [data] if isinstance(data, str | Path) else list(data)
    cubes = _cubes(items)
    if cubes:
        return _entry("cube", cubes, sensor, tile_size, names), [], sensor
    exts = tuple(dict.fromkeys((*RASTER_EXTS, *IMAGE_EXTS, ".tar")))
    # hidden files and folders left out, as an images source lists its folders: a copy from a Mac holds a `._x.tif`
    # AppleDouble file beside each file and a `.DS_Store`; a hidden `.thumbnails/` or `.cache/` folder counted here
    # (PNGs beside GeoTIFFs, a georeferenced TIFF among chips) refused the folder as two kinds of data
    files = resolve_paths(data, exts, what="image, raster or tar shard", hint=hint, hidden=False)
    tars = [f for f in files if f.lower().endswith(".tar")]
    if tars:
        loose = [f for f in files if not f.lower().endswith(".tar")]
        if loose:
            raise InputError(
                f"{data} holds tar shards ({tars[0]}) and {plural(len(loose), 'image or raster file')} ({loose[0]}); "
                "a source is one kind: pass them as two folders, or build data.sources with a tar and an images source"
            )
        if tile_size is not None:
            raise InputError(f"tile_size={tile_size} applies to rasters and cubes; {data} holds tar shards of images")
        if names:
            raise InputError(
                f"bands={names} select bands of rasters and cubes; {data} holds tar shards of images, {WHOLE}"
            )
        return _entry("tar", items, sensor, None), [], sensor
    rasters, chips, unread = _kinds(files)
    if not rasters and not chips:  # no header read: nothing to decide from
        raise InputError(f"cannot read {unread[0][0]} ({unread[0][1]}); {hint}")
    kind = "raster" if rasters else "images"
    if rasters and chips:  # a source is one kind: either reader would misread or leave out the other files
        raise InputError(
            f"{data} holds georeferenced rasters ({rasters[0].path}) and {plural(len(chips), 'image chip')} without a "
            f"CRS ({chips[0]}); a source is one kind: pass them as two folders, or build data.sources with a raster "
            "and an images source"
        )
    if kind == "images" and tile_size is not None:
        raise InputError(f"tile_size={tile_size} applies to rasters; {data} holds image chips, which train whole")
    if kind == "images" and names:
        raise InputError(f"bands={names} select bands of rasters and cubes; {data} holds image chips, {WHOLE}")
    default_sensor = None
    if rasters and rasters[0].count == 3 and rasters[0].dtype == "uint8":
        default_sensor = "sat493m"  # what the raster reader standardises 8-bit RGB with; the export records it
    return _entry(kind, items, sensor or default_sensor, tile_size, names), rasters, sensor or default_sensor


def _entry(
    kind: str, paths: Sequence[str | Path], sensor: str | None, tile_size: int | None, bands: list[str] | None = None
) -> str:
    """The `data.sources=[...]` override of one source."""
    extra = f", sensor: {_quoted(sensor)}" if sensor else ""
    if tile_size is not None:
        extra += f", tile_size: {int(tile_size)}"
    if bands:
        extra += f", bands: [{', '.join(_quoted(b) for b in bands)}]"
    return f"data.sources=[{{type: {kind}, paths: [{', '.join(_quoted(p) for p in paths)}]{extra}}}]"


def _is_cube(path: str | Path) -> bool:
    """A Zarr store, or an existing NetCDF/HDF5 file told by its suffix or its first bytes (a suffix-less NetCDF
    file in a folder was taken for other data): `data.cube_open.is_cube_store`, as cube sources expand folders."""
    from geodino.data.cube_open import is_cube_store, is_zarr_store

    p = Path(path).expanduser()
    return is_zarr_store(p) or (p.is_file() and is_cube_store(p))


def _cubes(items: list[str | Path]) -> list[str | Path]:
    """The datacubes `items` name (each a Zarr store or NetCDF file, or a folder whose data are such stores and
    files, at its top level), or [] when they name none; cubes beside other data are refused in one line."""
    from geodino.data.paths import IMAGE_EXTS, RASTER_EXTS

    exts = (*RASTER_EXTS, *IMAGE_EXTS, ".tar")
    found: list[str | Path] = []
    other: list[str | Path] = []
    for item in items:
        p = Path(item).expanduser()
        if _is_cube(p):
            found.append(item)
            continue
        kids = [c for c in sorted(p.iterdir()) if not c.name.startswith(".")] if p.is_dir() else []
        data = [c for c in kids if _is_cube(c) or c.is_dir() or c.suffix.lower() in exts]  # not READMEs
        stores = [str(c) for c in data if _is_cube(c)]
        found += stores
        other += [item] if not stores else [str(c) for c in data if not _is_cube(c)]
    if found and other:
        raise InputError(
            f"{found[0]} is a datacube but {other[0]} is other data; a source is one kind: pass the Zarr stores or "
            "NetCDF files alone, or build data.sources with a cube and another source"
        )
    return found


def _kinds(files: list[str]) -> tuple[list[_Header], list[str], list[tuple[str, str]]]:
    """(headers of the georeferenced rasters, chips, unreadable files with why) of the files, each judged on its own
    header: a raster-extension file with a CRS is a raster, one without a chip (as every JPEG/PNG/WebP/BMP, not
    opened). Every raster's header is read here, so what the early band check needs is kept from this one read."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    from geodino.data.paths import RASTER_EXTS

    rasters: list[_Header] = []
    chips: list[str] = []
    unread: list[tuple[str, str]] = []
    for f in files:
        if not f.lower().endswith(RASTER_EXTS):
            chips.append(f)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(f) as src:
                    crs, header = (
                        src.crs,
                        _Header(
                            f,
                            src.count,
                            src.dtypes[0],
                            tuple(src.descriptions or ()),
                            tuple(c.name for c in src.colorinterp),
                        ),
                    )
        except rasterio.errors.RasterioIOError as exc:
            unread.append((f, one_line(exc)))  # the reason may be on a later line
            continue
        if crs is None:
            chips.append(f)
        else:
            rasters.append(header)
    return rasters, chips, unread


def _quoted(value: str | Path) -> str:
    """A YAML flow scalar for a path (quoted, so commas, colons and spaces in it stay part of it)."""
    return "'" + str(value).replace("'", "''") + "'"


def pretrain(
    data: str | Path | Sequence[str | Path] | None,
    out: str | Path,
    *,
    config: str | Path = "small_vit_tiny",
    steps: int | None = None,
    init_from: str | Path | None = None,
    sensor: str | None = None,
    tile_size: int | None = None,
    bands: str | Sequence[str] | None = None,
    photos: bool | None = None,
    overrides: Sequence[str] = (),
) -> Path:
    """Pretrain on `data` (a folder, glob or list of images, rasters or tar shards; Zarr stores or NetCDF files: see
    `source_of`; None with `overrides=['data.sources=[...]']` for anything else) into the run folder `out`; returns it.

    `config`: a shipped recipe name or a YAML file (`small_vit_tiny`: the short-run recipe); `steps`:
    `trainer.max_steps`; `init_from`: a checkpoint, export or official release to continue from, whose
    architecture the student takes (`ssl.student.arch=from_init`) and whose missing heads train alone for the
    first 10 % of the run (`head_warmup_steps=0.1`; a 1-step run has no room for it) unless `overrides` say
    otherwise; `sensor`: the data's sensor; `tile_size`: tiles cut from rasters (pixels); `bands`: the band names a
    cube's or rasters' bands are read as, in that order (["B04", "B03", "B02"] or "B04,B03,B02": a store whose bands
    differ in number or order from the sensor's; see `source_of`; a name a cube or any raster lacks is refused
    before the run starts, naming the store or file and its bands); `photos`: the images are
    photos, which have an up (horizontal flips only, as the official web recipe: `crops.vflips=false`,
    `crops.rot90=false`), not overhead chips (the recipe's flips and 90° rotations); None: photos for an images or
    tar source given `sensor="imagenet"`, overhead chips without a sensor or with any other, and for rasters and
    cubes (one stderr line says which, for images and tar).
    The backbone is exported to `out/export/teacher.pth` (load it with `geodino.backbones.load_backbone`)."""
    from geodino.config import load_config, whole_number
    from geodino.train.pretrain import PretrainConfig
    from geodino.train.pretrain import pretrain as run

    if isinstance(overrides, str):  # one override given as a string: it would be read letter by letter
        overrides = [overrides]
    if steps is not None:
        steps = _at_least_one(whole_number(steps, "steps"), "steps", "trainer.max_steps")
    keys = [
        *_data_keys(data, sensor, tile_size, overrides, photos, bands),
        f"output_dir={_quoted(Path(out).expanduser())}",
    ]
    if steps is not None:
        keys.append(f"trainer.max_steps={steps}")
    if init_from is not None:
        keys += [f"init_from={_quoted(init_from)}", "ssl.student.arch=from_init"]
        from geodino.train.init_from import split_which

        # an official release: fresh heads train alone first (FILE?which=NAME, a distill student: judged by FILE)
        if not _has_heads(split_which(init_from)[0]):
            # 10 % of the run, and at least one step (a fraction of a tiny run rounds to none, which then warns); a
            # 1-step run has no room for it (the warm-up must end before the run does): the heads train with the
            # backbone from step 0, which the run's log says (init_from has no heads ...)
            if steps is None:
                keys.append("head_warmup_steps=0.1")
            elif steps >= 2:
                keys.append(f"head_warmup_steps={max(1, steps // 10)}")
    return run(_photos_chosen(load_config(PretrainConfig, config, [*_keys_only(keys), *overrides]), keys))


def distill(
    teacher: str | Path,
    data: str | Path | Sequence[str | Path] | None,
    out: str | Path,
    *,
    config: str | Path = "small_vit_tiny_half",
    student: str | Mapping[str, Any] | None = None,
    steps: int | None = None,
    sensor: str | None = None,
    tile_size: int | None = None,
    bands: str | Sequence[str] | None = None,
    photos: bool | None = None,
    overrides: Sequence[str] = (),
) -> dict[str, Path]:
    """Distil the frozen `teacher` (any backbone spec: a `geodino.pretrain` export, an official release, a checkpoint)
    into a smaller ViT on `data` (as `pretrain`'s) in the run folder `out`; returns `{student name: export path}`.

    `config`: a shipped distillation recipe or a YAML file (`small_vit_tiny_half`: a half-width student of a
    `small_vit_tiny` teacher on small chips; `vitl_to_vits`: a ViT-L/16 teacher, e.g. the official SAT-493M release,
    into a ViT-S/16); `student`: an architecture name (`vit_small`: one student of that name with the recipe's
    other settings) or a mapping of `students[]` keys (`{"arch": "vit_tiny", "overrides": {"depth": 6}}`), in
    place of the recipe's students; `steps`: `train.max_steps`; `sensor`, `tile_size`, `bands`, `photos`: as in
    `pretrain`.
    Each student is exported to `out/NAME/NAME.pth` (load it with `geodino.backbones.load_backbone`)."""
    from geodino.config import load_config, whole_number
    from geodino.train.distill import DistillConfig
    from geodino.train.distill import distill as run

    if isinstance(overrides, str):  # one override given as a string: it would be read letter by letter
        overrides = [overrides]
    keys = [
        f"teacher.spec={_quoted(Path(teacher).expanduser() if str(teacher).startswith('~') else teacher)}",
        *_data_keys(data, sensor, tile_size, overrides, photos, bands),
        f"output_dir={_quoted(Path(out).expanduser())}",
    ]
    if steps is not None:
        keys.append(f"train.max_steps={_at_least_one(whole_number(steps, 'steps'), 'steps', 'train.max_steps')}")
    if student is not None:
        keys.append(f"students=[{_student(student)}]")
    return run(_photos_chosen(load_config(DistillConfig, config, [*_keys_only(keys), *overrides]), keys))


def _data_keys(
    data: Any,
    sensor: str | None,
    tile_size: int | None,
    overrides: Sequence[str],
    photos: bool | None = None,
    bands: str | Sequence[str] | None = None,
) -> list[str]:
    """The data source's override (`source_of`), or none when `overrides` set `data.sources` themselves (then `data`
    is None: one place names the data, and `bands` goes in that source); then the crops of photos (`_photo_keys`)."""
    from geodino.errors import ConfigError

    if photos is not None and not isinstance(photos, bool):
        raise ConfigError(f"photos={photos!r}: pass True (photos: horizontal flips only), False or None (decide)")

    if any(str(o).split("=", 1)[0].strip() == "data.sources" for o in overrides):
        if data is not None:
            raise ConfigError(
                f"data={str(data)!r} and overrides=['data.sources=...'] both name the data; pass data=None"
            )
        if bands is not None:
            raise ConfigError(
                f"bands={bands!r} selects the bands of `data`; with overrides=['data.sources=...'] write them in "
                "that source (bands: [...])"
            )
        return _photo_keys(None, sensor, photos)
    if data is None:
        raise ConfigError(f"data=None needs the sources in overrides: {ROUTE}")
    source, rasters, source_sensor = _source(data, sensor, tile_size, bands)
    kind = source.split("type: ", 1)[1].split(",", 1)[0]
    if bands is not None and not any(str(o).startswith("data.sources") for o in overrides):
        if kind == "cube":
            _check_cube_bands(data, sensor, bands)
        elif kind == "raster":
            _check_raster_bands(rasters, source_sensor, bands)
    return [source, *_photo_keys(kind, sensor, photos)]


def _check_cube_bands(data: Any, sensor: str | None, bands: str | Sequence[str]) -> None:
    """Refuse a band name a datacube of `data` lacks before the run starts: the cube source refused it only once the
    run folder was made and locked (a used one's leftovers already moved aside) and the model built. Each store is
    opened as the source opens it (`open_cube`: metadata only; names matched as there, the sensor's aliases too), so
    the line is the source's: the store, the name and the bands it has."""
    from geodino.data.band_args import parse_band_names
    from geodino.data.cubes import open_cube
    from geodino.data.sensors import get_sensor

    sensor_obj = get_sensor(sensor) if sensor is not None else None
    names = parse_band_names(bands, "bands")
    for store in _cubes([data] if isinstance(data, str | Path) else list(data)):
        try:
            open_cube(str(store), bands=names, require_crs=False, sensor=sensor_obj)
        except MissingBandError as exc:
            raise exc.with_fix("pass bands= names among those") from None


def _check_raster_bands(rasters: Sequence[_Header], sensor: str | None, bands: str | Sequence[str]) -> None:
    """Refuse a band name any raster lacks before the run starts, as `_check_cube_bands` does for cubes: the raster
    source refused it only once the run folder was taken. Each file's bands are named from the header `_kinds` read
    (no file is opened again) by the raster source's own rules (`data.archive`: its band descriptions, else the
    sensor's names when the counts match, else b1..bN; names matched as there, the sensor's aliases too), in the
    source's file order, so the first file the source would stop at is the one named. Other faults (an unknown
    sensor, mixed band counts, unreadable files) are left to the source, which names them when the run builds it."""
    from geodino.data.archive import _file_band_names, _resolve_bands
    from geodino.data.band_args import parse_band_names
    from geodino.data.colour_bands import guessed_colour_pick, only_colour_tags
    from geodino.data.sensors import get_sensor

    try:
        sensor_obj = get_sensor(sensor) if sensor is not None else None
    except InputError:
        return
    wanted = parse_band_names(bands, "bands")
    for header in rasters:
        own = names = _file_band_names(header, sensor_obj)
        if names is None and sensor_obj is not None and sensor_obj.n_bands == header.count:
            names = sensor_obj.bands
        if names is None:
            names = tuple(f"b{i}" for i in range(1, header.count + 1))
        try:  # a colour-infrared file's GDAL colour tags are refused as names here too, as the source refuses them
            _resolve_bands(
                header.path, names, wanted, sensor_obj, tagged=only_colour_tags(header, own),
                guess=guessed_colour_pick(header, own, sensor_obj),
            )  # fmt: skip
        except MissingBandError as exc:
            fix = "pass bands= names among those"
            if exc.names == tuple(f"b{i}" for i in range(1, len(exc.names) + 1)):  # no descriptions, no sensor's
                fix += " or name the file's bands (band descriptions in the file, or a sensor= of its band count)"
            raise exc.with_fix(fix) from None


_PHOTOS_CHOSEN = "#photos-chosen"  # in `_photo_keys`' list: this call chose photos or overhead chips (not a key)


def _keys_only(keys: list[str]) -> list[str]:
    """The overrides of `keys`, without `_photo_keys`' marker."""
    return [k for k in keys if k != _PHOTOS_CHOSEN]


def _photos_chosen(cfg: Any, keys: list[str]) -> Any:
    """`cfg` with `crops.vflips` and `crops.rot90` recorded as set (`config_record`) when this call chose photos or
    overhead chips (`photos=` given, or decided and said in one line by `_photo_keys`): the run's start then does not
    warn a second time that the photo-like source gets the overhead default because they were left unset. Their
    values stay the config's (an override =true would undo a config's false)."""
    from geodino.config_record import record_set_keys, set_keys

    recorded = set_keys(cfg)
    if _PHOTOS_CHOSEN not in keys or recorded is None:
        return cfg
    return record_set_keys(cfg, [*recorded, "crops.vflips", "crops.rot90"])


def _photo_keys(kind: str | None, sensor: str | None, photos: bool | None) -> list[str]:
    """Horizontal flips only for photos (they have an up; the official web recipe's crops), as overrides; the
    recipe's crops (flips and 90° rotations: overhead imagery has no up) otherwise. `photos` None decides from the
    source: an images or tar source whose sensor is given as `imagenet` (the web sensor) holds photos; without a
    sensor, or with a satellite one, the images are taken as overhead chips (EuroSAT-like chips are what an EO
    package is given most; the files cannot tell), and the line printed says how to choose otherwise. Once chosen
    (`photos` given or decided), the list ends with `_PHOTOS_CHOSEN` (`_photos_chosen` reads it; not an override)."""
    if photos is None and kind in ("images", "tar"):
        photos = sensor == "imagenet"
        what = "photos: horizontal flips only" if photos else "overhead chips: the recipe's flips and 90° rotations"
        other = "False for overhead chips" if photos else "True for photos, which have an up"
        print(
            f"geodino: {kind} source with sensor {sensor or 'imagenet (default)'} read as {what} (photos={other})",
            file=sys.stderr,
        )
    chosen = [_PHOTOS_CHOSEN] if photos is not None else []
    return [*(["crops.vflips=false", "crops.rot90=false"] if photos else []), *chosen]


def _student(student: str | Mapping[str, Any]) -> str:
    """One `students[]` entry as a YAML flow mapping: an architecture name names its student after itself; a mapping
    without a name is named after its arch (the export folder is the name)."""
    import yaml

    from geodino.errors import ConfigError

    if isinstance(student, str):
        entry: dict[str, Any] = {"name": student, "arch": student}
    elif isinstance(student, Mapping):
        entry = dict(student)
        entry.setdefault("name", str(entry.get("arch", "vits")))
    else:
        raise ConfigError(
            f"student={student!r}: give an architecture name (student='vit_small') or a mapping of students[] keys "
            "(student={'arch': 'vit_tiny', 'overrides': {'depth': 6}})"
        )
    return yaml.safe_dump(entry, default_flow_style=True, width=10**6).strip()


def _has_heads(path: Path) -> bool:
    """Whether `init_from` brings DINO/iBOT heads, judged without reading it: a training checkpoint (.ckpt) or an
    export whose `.heads.pth` sidecar holds heads does; an official release (backbone only) or a converted `.pth`
    (a sidecar with build kwargs only) does not."""
    from geodino.models.checkpoints.files import sidecar_has_heads
    from geodino.train.init_from import resolve_init_path

    if path.is_dir():  # a run folder or its checkpoints/ stands for its last.ckpt; an HF/timm folder has no heads
        path = resolve_init_path(path)
        if path.is_dir():
            return (path / "meta.pt").is_file()  # a sharded training checkpoint
    return path.suffix == ".ckpt" or sidecar_has_heads(path)


def _at_least_one(steps: int, name: str, key: str) -> int:
    """`steps` when >= 1, else one ConfigError naming the Python argument (the config check named only `key`)."""
    if steps < 1:
        from geodino.errors import ConfigError

        raise ConfigError(f"{name}={steps} must be >= 1 (the run's {key})")
    return steps
