"""`CurateConfig`: the settings of `geodino data curate` and their checks (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from geodino.errors import ConfigError, InputError

__all__ = ["CurateConfig"]


@dataclass
class CurateConfig:
    """Settings of `curate` (see the module docstring for the rules)."""

    paths: list[str] = field(default_factory=list)
    config: str | None = None  # a pretraining (or data) config: curate its data.sources instead of `paths`
    overrides: list[str] = field(default_factory=list)  # dotted key=value overrides of `config`
    type: str = "images"  # images | raster | cube | tar (with `paths`)
    sensor: str | None = None
    bands: list[str] | None = None
    tile_size: int = 256  # raster tiles, px
    backbone: str = ""
    size: int = 0  # tiles to keep
    clusters: list[int] = field(default_factory=lambda: [64, 16, 4])  # per level, finest first
    resamples: int = 0  # resampling steps per level (0: plain k-means)
    # points closest to each centroid used in a resampling step: one for every level, or one per level (finest
    # first) where <= 1 skips resampling at that level (ssl-data-curation's per-level sample sizes)
    resample_size: int | list[int] = 10
    strategy: str = "random"  # random | closest (within level-1 clusters)
    dedup: float = 0.95  # cosine similarity at or above which a later tile is a near-duplicate (1.0 or above: off)
    max_nodata: float = 0.5
    cloud_rule: str = "auto"  # auto | qa | swir | rgb | bright | off (see geodino.data.curate.clouds)
    cloud_threshold: float = 0.5
    # a band of each raster (its description, or 1-based index) read only for the qa cloud rule, never a model input
    qa_band: str | None = None
    # the qa rule also counts cloud shadow (SCL class 3, QA_PIXEL bit 4): a shadowed tile is as dark and unlike the
    # ground as a cloudy one is bright; off by default (earlier curations keep their rule and cache)
    qa_shadow: bool = False
    max_cloud: float = 0.5
    chunk: int = 512
    batch_size: int = 64
    workers: int = 0
    device: str = "cpu"
    seed: int = 0
    exemplars: int = 8
    on_error: str | None = None  # stop | skip for unreadable images (None: stop, or each config source's own)

    def __post_init__(self) -> None:
        if isinstance(self.resample_size, (list, tuple)) and len(self.resample_size) == 1:
            self.resample_size = self.resample_size[0]  # `--resample-size 10`: one size for every level
        if self.config:  # as `pretrain -c` and `data curate --config` take it: a file, else the shipped config
            from geodino.config import find_config  # it names (configs/pretrain/X.yaml from any folder, a bare X)
            from geodino.train.config import PretrainConfig

            self.config = str(find_config(self.config, PretrainConfig))

    def validate(self) -> None:
        if self.type not in ("images", "raster", "cube", "tar"):
            raise ConfigError(f"curate type={self.type!r}; use images, raster, cube or tar")
        if bool(self.paths) == bool(self.config):
            raise ConfigError(
                "curate reads either PATHS or --config CFG.yaml (its data.sources; paths= or config= in Python)"
                + (", not both" if self.paths else "; give one")
            )
        if self.overrides and not self.config:
            raise ConfigError(
                f"key=value overrides ({', '.join(self.overrides)}; overrides= in Python) apply to --config CFG.yaml "
                "(config= in Python); give one or drop them"
            )
        if self.on_error not in (None, "stop", "skip"):
            raise ConfigError(f"--on-error {self.on_error!r} (on_error= in Python); use stop or skip")
        if not self.backbone:
            raise ConfigError(
                "curate needs --backbone SPEC (backbone= in Python): a checkpoint, arch:NAME or timm:NAME"
            )
        if self.size <= 0:
            raise ConfigError(f"--size {self.size} (size= in Python): give the number of tiles to keep (> 0)")
        if int(self.seed) < 0:  # k-means refused it with a traceback, after every tile was embedded
            raise ConfigError(f"--seed {self.seed}: give a whole number >= 0 (seed= in Python)")
        if not self.clusters or any(int(k) < 1 for k in self.clusters):
            raise ConfigError(
                f"--clusters {self.clusters} (clusters= in Python): give one positive count per level, finest first"
            )
        if any(int(a) < int(b) for a, b in zip(self.clusters, self.clusters[1:])):
            raise ConfigError(
                f"--clusters {self.clusters} (clusters= in Python): counts must not grow from level to level (finest "
                "first)"
            )
        if self.strategy not in ("random", "closest"):
            raise ConfigError(f"--strategy {self.strategy!r} (strategy= in Python); use random or closest")
        from geodino.data.curate.clouds import CLOUD_RULES

        if self.cloud_rule not in CLOUD_RULES:
            raise ConfigError(
                f"--cloud-rule {self.cloud_rule!r} (cloud_rule= in Python); use one of {', '.join(CLOUD_RULES)}"
            )
        if self.qa_band is not None:
            if not str(self.qa_band).strip():
                raise ConfigError(
                    "--qa-band '' (qa_band= in Python); name the QA band (its band description, e.g. SCL, or 1-based "
                    "index)"
                )
            if self.cloud_rule not in ("auto", "qa"):
                raise ConfigError(
                    f"--qa-band {self.qa_band} is read by the qa cloud rule, not --cloud-rule {self.cloud_rule}; use "
                    "--cloud-rule auto or qa, or drop --qa-band (qa_band= and cloud_rule= in Python)"
                )
        if self.qa_shadow and self.cloud_rule not in ("auto", "qa"):
            raise ConfigError(
                f"--qa-shadow is read from an SCL or QA_PIXEL band by the qa cloud rule, not --cloud-rule "
                f"{self.cloud_rule}; use --cloud-rule auto or qa, or drop --qa-shadow (qa_shadow= and cloud_rule= in "
                "Python)"
            )
        for key in ("max_nodata", "max_cloud"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(
                    f"--{key.replace('_', '-')} {getattr(self, key)} ({key}= in Python) must be in [0, 1]"
                )
        # NaN compares false: --dedup nan turned the near-duplicate filter off and --cloud-threshold nan the rgb and
        # bright screens, without a word; a cosine threshold <= -1 calls every tile a duplicate of the first
        if not self.dedup > -1.0:
            raise ConfigError(
                f"--dedup {self.dedup} (dedup= in Python) is out of range: give a cosine similarity above -1 (default "
                "0.95; 1 or above "
                "turns the near-duplicate filter off)"
            )
        if self.cloud_threshold != self.cloud_threshold:
            raise ConfigError(
                f"--cloud-threshold {self.cloud_threshold} (cloud_threshold= in Python): give a reflectance number "
                "(default 0.5)"
            )
        if isinstance(self.resample_size, (list, tuple)):
            sizes = list(self.resample_size)
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in sizes):
                raise ConfigError(
                    f"--resample-size {' '.join(map(str, sizes))} (resample_size= in Python) is out of range: give "
                    "integers >= 0, one per level "
                    "(<= 1 skips resampling at that level)"
                )
            from geodino.data.curate.cluster import per_level_sizes

            per_level_sizes(sizes, len(self.clusters))  # one per level, or refused in one line
        # counts checked before anything is read or written: 0 crashed deep inside (IndexError, ZeroDivisionError,
        # torch's ValueError) and --chunk 0 left the output folder behind
        for key, least, what in (
            ("resamples", 0, "resampling steps per k-means level; 0 is plain k-means"),
            ("resample_size", 1, "points per centroid in a resampling step"),
            ("chunk", 1, "tiles per cached embedding chunk"),
            ("batch_size", 1, "tiles per forward pass"),
            ("workers", 0, "reader processes; 0 reads in the main process"),
            ("tile_size", 1, "raster tile edge in px"),
        ):
            value = getattr(self, key)
            if key == "resample_size" and isinstance(value, (list, tuple)):
                continue  # one per level: checked above
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(
                    f"--{key.replace('_', '-')} {value!r} ({key}= in Python) is out of range: give an integer >= "
                    f"{least} ({what})"
                )
        from geodino.cpus import READERS_PER_CPU, most_readers

        if self.workers > (most := most_readers()):  # --workers 100000: the DataLoader started them one by one
            raise ConfigError(
                f"--workers {self.workers} (workers= in Python) is more than {most} reader processes "
                f"({READERS_PER_CPU} per CPU here); pass "
                f"at most {most}"
            )
        if self.paths and self.type in ("images", "tar") and self.tile_size != CurateConfig.tile_size:
            # each image (or tar member) is one whole tile: `curate scene.tif --tile-size 32` (--type images, the
            # default) embedded the scene as one image and ignored the flag; `data stats` refuses it for tar too
            what = "--type images (the default)" if self.type == "images" else "--type tar"
            hint = (
                "add --type raster for GeoTIFF scenes, or drop --tile-size"
                if self.type == "images"
                else ("drop --tile-size")
            )
            raise ConfigError(
                f"--tile-size {self.tile_size} (tile_size= in Python) cuts raster and cube archives into tiles, but "
                f"{what} reads each image "
                f"whole as one tile; {hint}"
            )

    def source_configs(self) -> tuple[list[Any], list[str]]:
        """The `SourceConfig`s to curate and where each comes from (for messages): the `data.sources` of
        `config` (a pretraining config, or a data config with `sources:`), else one source of `paths`."""
        from geodino.data.config import SourceConfig

        if not self.config:
            src = SourceConfig(type=self.type, paths=list(self.paths), sensor=self.sensor, bands=self.bands)
            src.tile_size = self.tile_size
            src.on_error = self.on_error or "stop"  # a named list or folder: a bad file is news (--on-error skip)
            return [src], [f"the {self.type} archive {self.paths}"]
        from pathlib import Path

        from geodino.config import load_config, read_yaml
        from geodino.data.config import DataConfig

        if not Path(self.config).is_file():
            raise InputError(
                f"--config {self.config} does not exist (config= in Python); give a pretraining config with "
                "data.sources"
            )
        if "data" in read_yaml(self.config):
            from geodino.train.config import PretrainConfig

            data = load_config(PretrainConfig, self.config, self.overrides).data
            prefix = "data.sources"
        else:
            data = load_config(DataConfig, self.config, self.overrides)
            prefix = "sources"
        if not data.sources:
            raise ConfigError(f"{self.config} has no {prefix}; list the sources to curate there")
        data.validate()
        for i, src in enumerate(data.sources):
            if self.on_error:
                src.on_error = self.on_error
            for path in src.paths:
                text = str(path)
                remote = text.startswith(("/vsi", "http://", "https://", "s3://", "gs://"))
                if not remote and not any(ch in text for ch in "*?[") and not Path(text).expanduser().exists():
                    fields = {"name": src.name, "type": src.type, "paths": "[DIR]", "sensor": src.sensor}
                    example = ", ".join(f"{k}: {v}" for k, v in fields.items() if v)
                    raise InputError(
                        f"{self.config}: {prefix}[{i}].paths: {text} does not exist (relative paths are read from "
                        f"the current folder, {Path.cwd()}); fix it there, or give the sources as an override: "
                        f"'{prefix}=[{{{example}}}]'"
                    )
        return list(data.sources), [f"{self.config}: {prefix}[{i}]" for i in range(len(data.sources))]
