"""Options of `geodino embed` / `embed_raster` (`EmbedConfig`), torch-free so the CLI parser stays light."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from geodino.config_lists import LIST_AS_TEXT
from geodino.cpus import usable_cpus
from geodino.data.band_args import parse_band_numbers as band_numbers  # the old name (embed/images.py)
from geodino.embed.backbone import parse_layers
from geodino.embed.command_flags import config_band_names, flag_name, layers_text
from geodino.errors import ConfigError, did_you_mean, plural

__all__ = [
    "DECLARED_BY_CF",
    "DECLARED_BY_FILE",
    "IDENT_KEYS",
    "EmbedConfig",
    "band_numbers",
    "check_margin",
    "make_config",
    "rank_device",
    "reads_file_rule",
    "user_rule",
]

# Settings a partial output records: a resume with other values would mix two rasters.
IDENT_KEYS = ("blend", "margin", "layers", "layer_mode", "norm", "dtype", "bands", "nodata", "upsample")
# how the metadata (GEODINO_INPUT_SCALE) names a rule the raster declares itself: "x*0.0001-0.1 (...)"
DECLARED_BY_FILE = "the input's GDAL scale/offset"
DECLARED_BY_CF = "the input's CF scale_factor/add_offset"  # a datacube's declared rule


@dataclasses.dataclass
class EmbedConfig:
    """Options of `geodino embed` / `embed_raster` (YAML keys; CLI flags use the same names with dashes)."""

    backbone: str = ""  # spec: checkpoint path, arch:vit_small?bands=4, timm:NAME ...
    out: str = ""  # OUT.tif (COG) or OUT.zarr (GeoZarr v2)
    tile: int = 512  # tile size in input pixels (multiple of the patch size)
    overlap: int = 128  # overlap between tiles in input pixels (multiple of the patch size, <= tile/2)
    blend: str = "cosine"  # cosine | hann | center
    margin: int | None = None  # px at inner tile borders given weight 0 (cosine/hann); None: overlap/4
    batch_size: int = 8
    # last | four_last | four_even | four_even_official | block indices "4,8,11" (negative from the end: "-2,-1" are
    # the last two blocks); text always names blocks ("2" is block 2), a bare int is refused (parse_layers)
    layers: str = dataclasses.field(default="last", metadata={LIST_AS_TEXT: layers_text})  # YAML [4, 8]: "4,8"
    layer_mode: str = "concat"  # concat | mean (of several layers)
    norm: bool = True  # apply the backbone's final LayerNorm to the patch features
    l2_normalize: bool | None = None  # unit-length vectors; None: on for int8, off otherwise
    dtype: str = "float32"  # float32 | float16 | int8
    chunk: int = 0  # storage chunk in output cells; 0: auto (whole pixel vectors, <= 16 MB)
    block_rows: int = 0  # rows of a resume/parallel block (multiple of chunk); 0: one chunk
    max_block_cols: int = 512  # widest column block (cells): bounds the blending band's memory
    upsample: bool = False  # write at the input resolution (bilinear) instead of the patch grid
    sensor: str | None = (
        None  # the data's sensor: its DN -> reflectance scale (the backbone's stats come with its spec)
    )
    scale: float | None = None  # explicit DN -> reflectance factor (overrides the dtype default)
    # per band read: DN -> reflectance as x * band_scale + band_offset (one value, or one per band), ahead of the
    # sensor's / record's rule; a STAC scene gets them from its item's raster:bands (unless `scale` is given or
    # stac_scale=false): Sentinel-2 of processing baseline >= 04.00 declares offset -0.1
    band_scale: list[float] | None = None
    band_offset: list[float] | None = None
    stac_scale: bool = True  # STAC input: apply the scale/offset each item declares for its bands
    # GeoTIFF/VRT input: apply the scale/offset the raster declares for the bands read (GDAL <Scale>/<Offset>,
    # rasterio's src.scales/src.offsets), as stac_scale does; a STAC item's raster:bands wins over them
    file_scale: bool = True
    # 1-based input bands to use (default: all); names too (red, B04) in a YAML or override, numbered per input by
    # `geodino embed` as --bands names are (`command_flags.config_band_names`)
    bands: list[Any] | None = None
    nodata: float | None = None  # override the input's declared nodata value
    variable: str | None = None  # variable of a Zarr/NetCDF cube input
    # the date of a cube input with a time dimension: an index (0; -1: the last) or a date label (text: 2024-02-01
    # picks the one date whose label starts with it); recorded as the output's input_time
    time: str | int | None = None
    # the area to embed (default: the whole raster), snapped outward to the patch grid and clipped to the raster:
    # bbox [minx, miny, maxx, maxy] in bbox_crs (default: the raster's CRS; many scenes: each scene's, scenes
    # outside it skipped), or window [col, row, width, height] in input pixels (one raster only); not both
    bbox: list[float] | None = None
    bbox_crs: str | None = None
    window: list[int] | None = None
    # [cols, rows] (each 0 .. patch size - 1) the patch grid starts left of / above the raster's origin: the
    # pixels there read as nodata. A many-scene run sets it per scene so that scenes sharing the first scene's
    # CRS and pixel grid land on its cell grid (one exact mosaic); None: cells start at the raster's origin
    grid_offset: list[int] | None = None
    asset: str | None = None  # STAC input: the item asset to embed (e.g. visual, image)
    asset_bands: list[str] | None = None  # STAC input: bands of the asset by name (red,nir) or 1-based number
    allow_no_crs: bool = False
    overwrite: bool = False
    resume: bool = False
    # many scenes: a scene that fails while it is embedded (data truncated mid-file...) or whose header GDAL cannot
    # open stops the run ("stop"), or is skipped ("skip": warned, its partial output removed, recorded as
    # OUT/<scene>.skipped.json, left out of the mosaic and catalog; --resume retries it); one raster always stops.
    # The flag and key `embed images` uses
    on_error: str = "stop"
    amp: bool = False  # bf16 autocast for inference
    device: str = "cpu"
    workers: int = 1  # spawn this many processes on disjoint blocks
    world_size: int = 1  # or: this process is `rank` of `world_size` launched externally (e.g. SLURM)
    rank: int = 0
    threads: int = 0  # torch intra-op threads (0: default)
    read_threads: int = 0  # windows read at once (0: 1 on a CPU, whose cores the forward needs; 2-4 on a GPU)
    gdal_cache_mb: int = 64  # GDAL block cache while reading/converting (GDAL's default, 5% of RAM, grows with size)
    progress: bool = True

    def validate(self) -> None:
        coerce_fields(self)
        self.time = time_choice(self.time)
        # names stay names (checked), numbered per input by the caller (`command_flags.number_band_names`)
        self.bands = config_band_names(self.bands) or band_numbers(self.bands)
        from geodino.embed.blend import BLEND_MODES  # numpy: not at import (`geodino --help` stays numpy-free)
        from geodino.embed.encoding import DTYPES

        if self.blend not in BLEND_MODES:
            raise ConfigError(f"blend={self.blend!r} is not valid; choose one of {', '.join(BLEND_MODES)}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype={self.dtype!r} is not valid; choose one of {', '.join(DTYPES)}")
        if self.layer_mode not in ("concat", "mean"):
            raise ConfigError(f"layer_mode={self.layer_mode!r} is not valid; choose concat or mean")
        if self.dtype == "int8" and self.l2_normalize is False:
            raise ConfigError("dtype=int8 stores unit-length vectors (AlphaEarth rule); drop l2_normalize=false")
        if self.tile < 1:
            raise ConfigError(f"tile={self.tile} must be positive; pass --tile 512 (a multiple of the patch size)")
        if self.overlap < 0:
            raise ConfigError(
                f"overlap={self.overlap} must be >= 0; pass --overlap 0 or a positive multiple of the patch size "
                f"(default {EmbedConfig.overlap})"
            )
        if self.margin is not None and self.margin < 0:  # the upper bound needs the patch size: `check_margin`
            raise ConfigError(
                f"margin={self.margin} must be >= 0 (a multiple of the patch size, at most overlap/2); pass --margin 0 "
                f"or leave it out (default overlap/4)"
            )
        for name in ("batch_size", "workers", "world_size"):  # each named with its value (was one line for all three)
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"{flag_name(name)} {getattr(self, name)} ({name}= in Python) must be >= 1; pass "
                    f"{flag_name(name)} {getattr(EmbedConfig, name)} (the default) or more"
                )
        check_threads(self.threads)
        if self.workers > (cpus := usable_cpus()):  # each a process loading the backbone: 100000 were spawned
            raise ConfigError(
                f"--workers {self.workers} (workers= in Python) is more than the {plural(cpus, 'CPU')} here; pass at "
                f"most {cpus} (one process each)"
            )
        if self.scale is not None and not 0 < self.scale < math.inf:  # a negative factor flips every band's sign
            raise ConfigError(
                f"--scale {self.scale} (scale= in Python) must be a positive DN -> reflectance factor, e.g. --scale "
                "1e-4 for reflectance x 10000; leave it out for the default (the backbone's recorded scale, else by "
                "dtype)"
            )
        if not 0 <= self.rank < self.world_size:
            todo = (  # named as the CLI takes them: `--rank 1` alone read 'rank=1 must be in 0..0 for world_size=1'
                "pass --world-size with it (the number of ranks, each run with its --rank 0..N-1)"
                if self.world_size == 1
                else f"ranks count from 0: pass --rank 0..{self.world_size - 1}"
            )
            raise ConfigError(
                f"--rank {self.rank} (rank= in Python) must be in 0..{self.world_size - 1} for --world-size "
                f"{self.world_size}; {todo}"
            )
        if self.on_error not in ("stop", "skip"):
            raise ConfigError(
                f"--on-error {self.on_error!r} (on_error= in Python) is not one of stop, skip; pass --on-error skip "
                "to go on past a scene that cannot be read, or stop (the default)"
            )
        if self.max_block_cols < 1:  # was taken as one chunk wide, silently
            raise ConfigError(
                f"max_block_cols={self.max_block_cols} must be >= 1 (output cells, rounded down to a multiple of the "
                f"chunk); leave it out for {EmbedConfig.max_block_cols} (the default)"
            )
        if self.chunk < 0:  # 0 is automatic; a negative count went on to the plan (refused after the weights loaded)
            raise ConfigError(f"--chunk {self.chunk} (chunk= in Python) must be >= 0 (output cells; 0: automatic)")
        if self.block_rows < 0:
            raise ConfigError(
                f"block_rows={self.block_rows} must be >= 0 (output rows, a multiple of chunk; 0: one chunk)"
            )
        if self.read_threads < 0:
            raise ConfigError(f"read_threads={self.read_threads} is not valid; give 0 (automatic) or a count >= 1")
        if self.workers > 1 and self.world_size > 1:
            raise ConfigError("use either workers=N (spawned here) or world_size/rank (launched outside), not both")
        parse_layers(self.layers)
        from geodino.embed.extent import check_extent

        check_extent(self)
        if self.grid_offset is not None:
            off = self.grid_offset
            if not isinstance(off, list | tuple) or len(off) != 2 or not all(type(v) is int and v >= 0 for v in off):
                raise ConfigError(f"grid_offset={off!r} must be two whole numbers >= 0 (cols, rows), e.g. [8, 0]")
            self.grid_offset = [int(v) for v in off]
        for key in ("band_scale", "band_offset"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, list) or not value):
                raise ConfigError(f"{key}={value!r} must be a list of numbers (one, or one per band read), e.g. [1e-4]")
            if value is not None:
                setattr(self, key, band_rule(key, value))
        if self.gdal_cache_mb < 0:  # went to GDAL_CACHEMAX as a negative byte count
            raise ConfigError(f"gdal_cache_mb={self.gdal_cache_mb} must be >= 0 (MB of GDAL block cache; default 64)")
        if self.scale is not None and (self.band_scale is not None or self.band_offset is not None):
            raise ConfigError("scale and band_scale/band_offset both give the DN -> reflectance rule; keep one")
        if self.scale is not None and self.sensor:  # the sensor's rule went first: --scale was dropped, silently
            raise ConfigError(
                f"--sensor {self.sensor} and --scale {self.scale:g} both give the DN -> reflectance rule (sensor= and "
                "scale= in Python), and the sensor's would win; keep one: --scale for your own factor, --sensor for "
                "the sensor's"
            )
        if self.band_offset is not None and self.band_scale is None:  # as the probes' data_offset needs data_scale
            # the rule is x * band_scale + band_offset: an offset alone is x * 1 + offset, DN left unscaled
            raise ConfigError(
                f"band_offset={self.band_offset} needs band_scale: set band_scale to the DN -> reflectance factor too "
                "(e.g. band_scale=[0.0001] band_offset=[-0.1] for Sentinel-2 of processing baseline >= 04.00)"
            )

    def effective_margin(self, patch: int) -> int:
        """`margin`, or its default (overlap/4 rounded down to the patch size) when unset; the config is not changed."""
        return (self.overlap // 4) // patch * patch if self.margin is None else int(self.margin)


# the scalar fields a Python caller may give as text ("256", "1e-4", "true"), read as YAML and the CLI read them
_INTS: tuple[str, ...]
_BOOLS: tuple[str, ...]
_INTS = ("tile", "overlap", "margin", "batch_size", "chunk", "block_rows", "max_block_cols")
_INTS += ("workers", "world_size", "rank", "threads", "read_threads", "gdal_cache_mb")
_FLOATS = ("scale", "nodata")
_BOOLS = ("norm", "l2_normalize", "upsample", "stac_scale", "file_scale", "allow_no_crs", "overwrite", "resume")
_BOOLS += ("amp", "progress")


def coerce_fields(cfg: EmbedConfig) -> None:
    """Read the scalar options as YAML and the CLI do, in place: a whole number (or its text, "256") for the int
    fields, a number (or its text) for the float ones, true/false (or "true"/"false", "yes"/"no", 1/0) for the
    flags; None stays None where the default is None. Anything else is one ConfigError line naming the option."""
    from geodino.config import real_number, true_or_false, whole_number

    for name in _INTS + _FLOATS + _BOOLS:
        value = getattr(cfg, name)
        if value is None and getattr(EmbedConfig, name) is None:
            continue
        if name in _INTS:
            setattr(cfg, name, whole_number(value, name, getattr(EmbedConfig, name) or 0))
        elif name in _FLOATS:
            setattr(cfg, name, real_number(value, name, "1e-4" if name == "scale" else "0", finite=False))
        else:
            setattr(cfg, name, true_or_false(value, name))


def band_rule(key: str, values: list[Any]) -> list[float]:
    """`band_scale` / `band_offset` as floats (numeric text, "1e-4", read as the scalar options read it): each
    `band_scale` value a finite number > 0 and each `band_offset` value a finite number, as `scale` must be; a zero
    or negative factor zeroed or negated the band (it was accepted), other text failed deep in the run."""
    import numbers

    out = []
    for v in values:
        x = v
        if isinstance(v, str):
            try:
                x = float(v.strip())
            except ValueError:
                x = None
        ok = isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)
        if ok:
            out.append(float(x))
        if not ok or (key == "band_scale" and x <= 0):
            what = "a positive DN -> reflectance factor" if key == "band_scale" else "a finite number"
            raise ConfigError(
                f"{key}={values!r}: {v!r} is not {what}; give one value or one per band read, e.g. "
                + ("band_scale=[0.0001]" if key == "band_scale" else "band_scale=[0.0001] band_offset=[-0.1]")
            )
    return out


def time_choice(value: Any) -> int | str | None:
    """The `time` option as `select_time` takes it: an int index (whole floats and numpy ints too), or a date label
    as text (a YAML or Python date becomes its ISO text); a flag or anything else is one ConfigError line."""
    import datetime

    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if hasattr(value, "dtype") and getattr(value, "ndim", None) == 0 and value.dtype.kind in "iu":
        return int(value)
    raise ConfigError(f"time={value!r} must be a date index (time=0; -1: the last) or a date label (time=2024-02-01)")


def user_rule(cfg: EmbedConfig) -> bool:
    """Whether the DN -> reflectance rule is given outright (`scale`, `band_scale`, `band_offset`): then what the
    input declares (a STAC item's raster:bands, a raster's GDAL scale/offset) is not looked at."""
    return cfg.scale is not None or cfg.band_scale is not None or cfg.band_offset is not None


def reads_file_rule(cfg: EmbedConfig) -> bool:
    """Whether a raster's own GDAL scale/offset may apply: `file_scale` on and no rule given outright (a STAC
    scene whose item declares raster:bands has them as `band_scale`/`band_offset` by then: the item wins)."""
    return cfg.file_scale and not user_rule(cfg)


def check_margin(margin: int, overlap: int, patch: int) -> None:
    """Refuse a margin that is not a multiple of the patch size between 0 and overlap/2, in one line that lists the
    values that are (so the user is not sent from one bound to the other)."""
    if margin >= 0 and margin % patch == 0 and 2 * margin <= overlap:
        return
    ok = list(range(0, overlap // 2 + 1, patch))
    listed = ", ".join(map(str, ok)) if len(ok) <= 6 else f"{ok[0]}, {ok[1]}, ..., {ok[-1]}"
    which = f"only {ok[0]}; pass --margin {ok[0]}" if len(ok) == 1 else f"{listed}; pass one of them with --margin"
    raise ConfigError(
        f"margin={margin} must be a multiple of the patch size {patch} between 0 and overlap/2 ({overlap // 2}): "
        f"{which} or leave it out (default overlap/4, rounded down to the patch size)"
    )


def make_config(config: EmbedConfig | None, backbone: Any, out: Any, options: dict[str, Any]) -> EmbedConfig:
    """A validated copy of `config` (the caller's is never changed) with `options` (EmbedConfig fields; unknown
    names fail with the closest valid one), the backbone (a spec or an object) and the output set when given.

    A `config` that is not an EmbedConfig is refused in one line rather than read as options: a dict would be a
    second way to pass the same options (which wins when both give one?), and a string there is nearly always a
    backbone spec given as embed_scenes' second positional argument."""
    if config is not None and not isinstance(config, EmbedConfig):
        raise ConfigError(_not_a_config(config))
    cfg = dataclasses.replace(config) if config is not None else EmbedConfig()
    names = [f.name for f in dataclasses.fields(EmbedConfig)]
    unknown = sorted(set(options) - set(names))
    if unknown:
        close = [did_you_mean(k, names) for k in unknown]
        hint = "; ".join(f"{k}" + (f" (did you mean {c[0]}?)" if c else "") for k, c in zip(unknown, close))
        raise ConfigError(f"{plural(len(unknown), 'unknown embed option')}: {hint}")
    for k, v in options.items():
        setattr(cfg, k, v)
    if backbone is not None:
        cfg.backbone = backbone
    if out is not None:
        cfg.out = str(out)
    cfg.validate()
    cfg.device = rank_device(cfg.device, cfg.rank, cfg.world_size)
    return cfg


def rank_device(device: str, rank: int, world_size: int, local: int | None = None) -> str:
    """One GPU per process on a machine with several: for rank `rank` of `world_size` > 1, a bare "cuda" becomes
    cuda:<local rank mod GPUs>, the local rank being `local` (a spawned worker's index), else torchrun's LOCAL_RANK,
    else SLURM_LOCALID when SLURM_PROCID is `rank` (the ranks are srun's tasks), else `rank`. SLURM_LOCALID alone
    does not say the rank's task: an sbatch script's own step sets it (to 0) too, and every rank that script starts
    (a loop, GNU parallel, array tasks sharing a node) would land on the first GPU. Every other device ("cpu",
    "cuda:1", "mps") and a single process are left as given: a bare "cuda" put every rank of a node on its first GPU."""
    if device != "cuda" or world_size <= 1:
        return device

    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n <= 1:
        return device
    if local is None:
        env = os.environ.get("LOCAL_RANK", "").strip()
        procid = os.environ.get("SLURM_PROCID", "").strip()
        if not env.isdigit() and procid.isdigit() and int(procid) == rank:  # this rank is the srun task
            env = os.environ.get("SLURM_LOCALID", "").strip()
        local = int(env) if env.isdigit() else rank
    return f"cuda:{local % n}"


def _not_a_config(config: Any) -> str:
    """Why `config` (not an EmbedConfig) cannot be used, and what to pass instead: one line."""
    if isinstance(config, dict):
        return (
            f"config= takes an EmbedConfig, not a dict ({config!r}); pass the options as keywords "
            "(embed_raster(..., tile=256)), or EmbedConfig(**d)"
        )
    if isinstance(config, str) and config.strip().lower().endswith((".yaml", ".yml")):
        return (  # embed_raster(..., config="embed.yaml"): not a backbone spec, so no embed_scenes hint
            f"config= takes an EmbedConfig, not the YAML path {config!r}; read it with "
            "config=load_config(EmbedConfig, PATH) (geodino.config), or pass the options as keywords"
        )
    if isinstance(config, str):
        return (
            f"config= takes an EmbedConfig, not the string {config!r}: the second argument of embed_scenes is "
            f"config; pass backbone={config!r} (a YAML file: config=load_config(EmbedConfig, PATH) from geodino.config)"
        )
    return f"config= takes an EmbedConfig (or None), not a {type(config).__name__}; pass the options as keywords"


def check_threads(threads: int) -> None:
    """`--threads` (embed and embed images): >= 0 (torch.set_num_threads raised a RuntimeError traceback deep in the
    run) and at most the CPU count (`--threads 100000` failed in torch's allocator; more only oversubscribe)."""
    if threads < 0:
        raise ConfigError(
            f"--threads {threads} (threads= in Python) must be >= 0; pass a count >= 1, or 0 for torch's default "
            "(the default)"
        )
    cpus = usable_cpus()
    if threads > cpus:
        raise ConfigError(
            f"--threads {threads} (threads= in Python) is more than the {plural(cpus, 'CPU')} here; pass at most "
            f"{cpus}, or 0 for torch's default (the default)"
        )
