"""Data config dataclasses (`DataConfig`, `SourceConfig`, `CropsConfig`, `CropSet`), kept free of torch so the
CLI parser stays light.

`geodino.data.loaders` and `geodino.data.crops` re-export them; configs are read with `geodino.config.load_config`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, ClassVar

from geodino.data.band_args import parse_band_names
from geodino.errors import ConfigError, did_you_mean

__all__ = [
    "DEFAULT_SENSORS",
    "PHOTO_SENSORS",
    "PREVIEW_MAX_SAMPLES",
    "CropSet",
    "CropsConfig",
    "DataConfig",
    "PreviewDataConfig",
    "SourceConfig",
    "overhead_flips_on_photos",
]

SOURCE_KEY_FLAGS = (
    ("`sensor:`", "--sensor"),
    ("sensor: file.yaml", "--sensor file.yaml"),
    ("`bands:`", "--bands"),
    ("`band_names:`", "--band-names"),
    ("set on_error: skip", "pass --on-error skip"),
    ("set the source's `nodata:`", "pass --nodata"),
    ("a smaller tile_size", "a smaller --tile-size"),
    ("check tile_size", "check --tile-size"),
)
"""How a source's messages name its keys, and the flags of the `data` commands that set them."""


def name_flags(exc: BaseException, flags: Any = SOURCE_KEY_FLAGS) -> BaseException:
    """`exc` with its message naming the command's flags where it names a source's keys (`sensor:` -> --sensor,
    tile_size -> --tile-size): for a source a command built from its flags, where no `sensor:` is to be set.
    `flags`: (key text, flag text) pairs, e.g. without the keys a command has no flag for."""
    if exc.args and isinstance(exc.args[0], str):
        message = exc.args[0]
        for key, flag in flags:
            message = message.replace(key, flag)
        exc.args = (message, *exc.args[1:])
    return exc


SOURCE_TYPES = ("raster", "cube", "images", "tar", "torchgeo", "synthetic")
"""The values of a source's `type`."""


def check_source_type(value: object, key: str) -> None:
    """The one check of a source's `type` (a config's `data.sources[i].type`, `compute_stats(type=...)`): a
    ConfigError naming `key`, the closest type and the valid ones."""
    if value in SOURCE_TYPES:
        return
    close = did_you_mean(str(value), SOURCE_TYPES)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"{key}={value!r}; use raster, cube, images, tar, torchgeo or synthetic{hint}")


_CHOICES = {
    "on_error": ("stop", "skip"),
    "sampling": ("random", "grid"),
    "tile_units": ("px", "m"),
    "time_sampling": ("random", "first", "last", "stack"),
    "resampling": ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode", "gauss", "max",
                   "min", "med", "q1", "q3", "sum", "rms"),  # rasterio's Resampling names (a WarpedVRT's)
}  # fmt: skip


def check_source_keys(s: SourceConfig, key: str) -> None:
    """A ConfigError naming `KEY.name` for a source setting outside its choices or range. A misspelt `resampling`
    (read only when reprojecting) failed every window read as "the file may be truncated or corrupt"."""
    for name, choices in _CHOICES.items():
        value = getattr(s, name)
        if value is not None and value not in choices:
            close = did_you_mean(str(value), choices)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{key}.{name}={value!r}; use one of {', '.join(choices)}{hint}")
    if not 0 <= s.max_nodata_fraction <= 1:
        raise ConfigError(f"{key}.max_nodata_fraction={s.max_nodata_fraction!r}; give a fraction between 0 and 1")
    for name in ("tile_size", "stride"):  # read when the source is built: the sampler's line named no key
        value = getattr(s, name)
        if value is not None and not value > 0:
            raise ConfigError(f"{key}.{name}={value!r}; give a size > 0 in tile_units ({s.tile_units}), e.g. 256")


band_list = parse_band_names
"""The old name of `geodino.data.band_args.parse_band_names` (a source's `bands` / `band_names` as names), kept for
its callers (`data/stats.py`)."""


# the sensor of a source that names none, where it does not depend on the files (rasters infer theirs from the data)
DEFAULT_SENSORS = {"images": "imagenet", "tar": "imagenet", "synthetic": "sat493m"}


@dataclass
class SourceConfig:
    """One data source. `type`: raster (GeoTIFF/COG/VRT), cube (Zarr/NetCDF), images (folders), tar (shards),
    torchgeo (any torchgeo GeoDataset class), synthetic (generated tiles for smoke tests and demos)."""

    name: str = ""  # defaults to source<i>
    type: str = "raster"
    paths: list[str] = field(default_factory=list)  # folders, globs, files, .txt lists (cube: stores)
    weight: float = 1.0  # share of steps whose batch comes from this source
    sensor: str | None = None  # data sensor (built-in name or YAML): scale, band names, default nodata
    bands: list[str] | None = None  # band names to read (None: all)
    band_names: list[str] | None = None  # names of the files' bands when they carry no descriptions
    nodata: float | None = None  # override the files' nodata value
    tile_size: int | float = 256  # tile edge, in tile_units (an int stays one: config.yaml showed 64.0)
    tile_units: str = "px"  # px | m
    sampling: str = "random"  # random | grid
    stride: int | float | None = None  # grid stride (default tile_size)
    max_nodata_fraction: float = 0.5  # redraw (random) / drop (grid) tiles with more nodata than this
    max_tries: int = 10
    roi: str | None = None  # WKT polygon or vector file
    roi_crs: str = "EPSG:4326"
    crs: str | None = None  # reproject every scene to this CRS (default: native CRS per scene)
    res: float | None = None  # target resolution with crs
    resampling: str = "bilinear"
    # stop | skip: unreadable files, files without CRS, corrupt images; null: skip for images and tar, else stop
    on_error: str | None = None
    recursive: bool = True
    fast_decode: bool = True  # images/tar: decode large JPEGs at 1/2..1/8 scale when no crop is upsampled
    index_cache: str | None = None  # raster: JSON index reused while files and settings are unchanged
    variable: str | None = None  # cube: data variable
    band_dim: str | None = None  # cube: band dimension name (auto: band/bands/channel/...)
    time_dim: str = "time"
    time_sampling: str = "random"  # cube: random | first | last | stack
    align_to_chunks: bool = True  # cube: snap random tiles to the tile grid inside chunks (docs/data.md)
    allow_no_crs: bool = False  # cube: train on a store without a CRS (tiles in px, no roi; no extent in exports)
    dataset: str | None = None  # torchgeo: GeoDataset class, e.g. torchgeo.datasets.Sentinel2 (paths -> `paths=`)
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)  # torchgeo: further constructor arguments


@dataclass
class DataConfig:
    """Sources (mixed per batch by weight) and the normalisation statistics."""

    sources: list[SourceConfig] = field(default_factory=list)
    norm_sensor: str | None = None  # mean/std used to standardise (default: each source's own sensor)
    shuffle: bool = True
    key_prefix: ClassVar[str] = "data."  # how messages name the keys: `data.sources` in a pretraining config

    def validate(self) -> None:
        p = self.key_prefix
        if not self.sources:
            raise ConfigError(
                f"{p}sources is empty; add a source, e.g. {p}sources=[{{type: raster, paths: [scenes/]}}]"
            )
        names = set()
        for i, s in enumerate(self.sources):
            check_source_type(s.type, f"{p}sources[{i}].type")
            check_source_keys(s, f"{p}sources[{i}]")
            s.bands = parse_band_names(s.bands, f"{p}sources[{i}].bands")  # "red,nir" split; band numbers refused
            s.band_names = parse_band_names(s.band_names, f"{p}sources[{i}].band_names")
            if not s.paths and s.type != "synthetic":
                raise ConfigError(f"{p}sources[{i}].paths is empty; list folders, globs or files")
            name = s.name or f"source{i}"
            if name in names:
                raise ConfigError(f"{p}sources[{i}].name={name!r} is used twice; names must be unique")
            names.add(name)


@dataclass
class CropSet:
    """One resolution setting of multi-resolution training (official high-res adaptation uses several)."""

    global_size: int = 224
    local_size: int = 96
    gram_size: int | None = None
    probability: float = 1.0


@dataclass
class CropsConfig:
    """Multi-crop settings (defaults: the official 2 x 224 global, 8 x 96 local) and iBOT mask settings."""

    n_global: int = 2
    n_local: int = 8
    global_size: int = 224
    local_size: int = 96
    global_scale: list[float] = field(default_factory=lambda: [0.32, 1.0])
    local_scale: list[float] = field(default_factory=lambda: [0.05, 0.32])
    ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])
    gram: bool = False  # produce Gram-teacher crops
    gram_size: int | None = None  # default 2 x global_size
    crop_sets: list[CropSet] = field(default_factory=list)  # multi-resolution; overrides the sizes when set
    flips: bool = True  # random horizontal flips (official), and vertical ones while `vflips` is on
    vflips: bool = True  # overhead imagery has no "up"; false: horizontal flips only, as the official recipe
    rot90: bool = True  # random 90-degree turns (overhead); photos with vflips/rot90 unset: `overhead_flips_on_photos`
    jitter_prob: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    # hue jitter: "hsv" is torchvision's adjust_hue (the official ColorJitter), "yiq" a YIQ chroma rotation, kept as
    # None (the default): what runs checkpointed before the key hold, so they resume with either (crops.* are fixed
    # on resume). Measured differences and speed: geodino/data/augment.py
    hue_space: str | None = None
    band_jitter: float = 0.1  # multispectral: extra per-band brightness/contrast spread
    grayscale_prob: float = 0.2
    solarize_prob: float = 0.2
    blur_probs: list[float] = field(default_factory=lambda: [1.0, 0.1, 0.5])  # global 1, global 2, local
    official_blur_bug: bool = False
    # where the colour jitter / grayscale / blur / solarize run, batched over the step's crops: "loader" (the
    # collate, on CPU, in the workers when num_workers > 0), "device" (on the accelerator after the transfer;
    # frees loader workers on a GPU) or "auto" (device when training runs on CUDA, else loader). Same crops
    # either way: the parameters are drawn per crop in the loader.
    photometric: str = "auto"
    blur_sigma: list[float] = field(default_factory=lambda: [0.1, 2.0])
    blur_kernel: int = 9
    min_valid_fraction: float = 0.5
    mask_ratio: list[float] = field(default_factory=lambda: [0.1, 0.5])
    mask_probability: float = 0.5
    mask_max_block_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.hue_space == "yiq":
            self.hue_space = None

    def validate(self) -> None:
        if self.n_global < 1:
            raise ConfigError(f"crops.n_global must be >= 1, got {self.n_global}")
        for key in ("global_scale", "local_scale", "mask_ratio", "blur_sigma", "ratio"):
            v = getattr(self, key)
            if len(v) != 2 or v[0] > v[1] or v[0] < 0:
                raise ConfigError(f"crops.{key} must be [low, high] with 0 <= low <= high, got {list(v)}")
        if not self.ratio[0] > 0:  # the crop boxes draw log(aspect): 0 was a raw "math domain error" in the loader
            raise ConfigError(
                f"crops.ratio={list(self.ratio)} must be [low, high] with 0 < low <= high: aspect ratios (width / "
                "height) of the crop boxes (official: [0.75, 1.333])"
            )
        if self.n_local < 0:
            raise ConfigError(f"crops.n_local={self.n_local} must be >= 0 (official: 8 local crops; 0 turns them off)")
        lo, hi = self.mask_ratio
        if not 0 <= lo <= hi <= 1:  # NaN fails every comparison
            raise ConfigError(
                f"crops.mask_ratio={list(self.mask_ratio)} must be [low, high] with 0 <= low <= high <= 1: shares of "
                "a crop's patches to mask (official: [0.1, 0.5])"
            )
        if not 0 <= self.mask_probability <= 1:
            raise ConfigError(
                f"crops.mask_probability={self.mask_probability} must be in [0, 1]: the share of global crops masked"
            )
        if self.hue_space not in (None, "yiq", "hsv"):
            raise ConfigError(
                f"crops.hue_space must be 'hsv' (torchvision's HSV hue, as the official recipe) or 'yiq' (a YIQ "
                f"chroma rotation; the default), got {self.hue_space!r}"
            )
        if self.photometric not in ("auto", "loader", "device"):
            raise ConfigError(f"crops.photometric must be 'auto', 'loader' or 'device', got {self.photometric!r}")
        if len(self.blur_probs) != 3:
            raise ConfigError(f"crops.blur_probs needs 3 values (global 1, global 2, local), got {self.blur_probs}")
        if self.crop_sets and abs(sum(c.probability for c in self.crop_sets) - 1.0) > 1e-6:
            raise ConfigError(
                f"crops.crop_sets probabilities sum to {sum(c.probability for c in self.crop_sets)}; they must sum to 1"
            )


PHOTO_SENSORS = ("imagenet",)
"""Sensors of web photos, which have an up (`rgb` and `web` are their aliases); any other is overhead imagery."""


def _photo_source(source: SourceConfig) -> bool:
    """An images or tar source whose sensor is a web photos' one: named so, or left unset (their default)."""
    if source.type not in ("images", "tar"):
        return False
    if source.sensor is None:
        return DEFAULT_SENSORS[source.type] in PHOTO_SENSORS
    from geodino.data.sensors import get_sensor

    try:
        return get_sensor(source.sensor).name in PHOTO_SENSORS
    except Exception:  # an unknown sensor or unreadable YAML is refused, naming the key, when the source is built
        return False


def overhead_flips_on_photos(
    data: DataConfig, crops: CropsConfig, keys: Collection[str] | None, prefix: str = "crops."
) -> str | None:
    """One line when photo-like sources (images or tar, sensor imagenet or unset) get the overhead default of vertical
    flips and 90-degree rotations only because `crops.vflips` / `crops.rot90` were left unset; else None.

    The shipped EuroSAT-chip recipe (small_vit_tiny) is also images + imagenet, so the sources cannot tell photos
    from overhead chips: only a config that did not choose is told. `keys`: the keys its file and overrides set
    (`geodino.config.set_keys`); None (a config built in Python) says nothing, as the choice is unknown."""
    if keys is None:
        return None
    left = [
        k
        for k, on in (("vflips", crops.flips and crops.vflips), ("rot90", crops.rot90))
        if on and prefix + k not in keys
    ]
    photos = [s.name or f"source{i}" for i, s in enumerate(data.sources) if _photo_source(s)]
    if not left or not photos:
        return None
    named = " and ".join(prefix + k for k in left)
    what = " and ".join({"vflips": "vertical flips", "rot90": "90-degree rotations"}[k] for k in left)
    many = len(photos) > 1
    return (
        f"data source{'s' if many else ''} {', '.join(photos)} (images/tar with sensor imagenet or none: web photos?) "
        f"get{'' if many else 's'} the overhead default of {what}, as {named} {'are' if len(left) > 1 else 'is'} not "
        f"set; photos have an up: set {' '.join(prefix + k + '=false' for k in left)} for horizontal flips only (the "
        f"official recipe), or =true for overhead chips, which silences this"
    )


def resolve_photometric(cfg: CropsConfig, on_cuda: bool) -> CropsConfig:
    """`cfg` with `photometric: auto` decided: "device" when the batches go to a CUDA device, else "loader"."""
    import dataclasses

    if cfg.photometric != "auto":
        return cfg
    return dataclasses.replace(cfg, photometric="device" if on_cuda else "loader")


# The most samples (figure rows) `data preview` draws: each row is 1.7 in at 90 dpi (153 px), so 64 rows are a PNG
# near 10,000 px tall, drawn in about half a minute (~0.5 s a row); --samples 100000 ran on for hours with no bound
PREVIEW_MAX_SAMPLES = 64


@dataclass
class PreviewDataConfig(DataConfig):
    """A DataConfig given on its own (`geodino data preview sources=[...]`): messages name `sources`, not
    `data.sources`, the key that command takes."""

    key_prefix: ClassVar[str] = ""


def warn_photo_flips(cfg: Any) -> str | None:
    """Warn (and return the line) when a run's photo-like sources get the overhead default of vertical flips and
    90-degree rotations because `crops.vflips` / `crops.rot90` were left unset (`overhead_flips_on_photos`, from the
    keys `load_config` recorded; None for a config built in Python). `cfg`: a pretraining or distillation config
    (`data`, `crops`). Called once by each run's start on rank 0, once its checks passed (a refused start stays one
    line) and not on a finished run's re-run, which trains nothing; never by `validate`: reading a config (data
    curate) says nothing."""
    import warnings

    from geodino.config_record import set_keys
    from geodino.models.caller import user_stacklevel

    message = overhead_flips_on_photos(cfg.data, cfg.crops, set_keys(cfg))
    if message is not None:
        warnings.warn(message, stacklevel=user_stacklevel())
    return message
