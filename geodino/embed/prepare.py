"""What an embedding run will do, decided before any work (`prepare`): the input opened and checked, the backbone's
bands, layers and feature width, the tile plan and the metadata every output records (`PreparedRun`)."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import torch

from geodino.backbones.layers import LayerIndexError, backbone_layer_indices
from geodino.embed.backbone import describe_backbone, parse_layers, weights_device
from geodino.embed.band_order import check_band_order
from geodino.embed.config import (
    DECLARED_BY_CF,
    DECLARED_BY_FILE,
    IDENT_KEYS,
    EmbedConfig,
    check_margin,
    reads_file_rule,
)
from geodino.embed.extent import WindowSource, windowed
from geodino.embed.input_scaling import refuse_without_rule, warn_dn_as_reflectance, warn_record_units
from geodino.embed.memory import check_memory
from geodino.embed.plan import Plan, auto_chunk, make_plan, nearest_multiples
from geodino.embed.provenance import input_identity
from geodino.embed.scale_rule import ScaleRule
from geodino.embed.sources import check_bands_fit, open_source
from geodino.embed.sweep import input_scaler, recorded_scale, scaling_sensor
from geodino.embed.workdir import with_input_variables
from geodino.embed.writers import DEQUANT_RULE
from geodino.errors import ConfigError, InputError, plural

__all__ = ["PreparedRun", "cube_rule", "file_rule", "out_kind", "prepare"]


@dataclasses.dataclass
class PreparedRun:
    """What every process of a run needs before reading pixels (built by `prepare`, the same in every process)."""

    source: Any  # geodino.embed.sources.RasterSource | CubeSource
    plan: Plan
    dim: int  # output bands
    band_names: list[str]
    meta: dict[str, Any]  # written into the output's metadata
    ident: dict[str, Any]  # the settings a partial output records (a resume must match them)
    l2: bool  # unit-length vectors
    margin: int  # px at inner tile borders with weight 0 (the config's, or its default)
    scale_rule: ScaleRule  # DN -> reflectance as chosen: the metadata's input_scale, the console's line
    n_valid: int | None = None  # valid cells, known once every block is done
    # (scales, offsets) the raster declares for the bands read and the run applies (`file_rule`), else None
    declared: tuple[tuple[float, ...], tuple[float, ...]] | None = None


# ---------------------------------------------------------------------------------------------------------------
# preparation (shared by every process of a run)


def _layer_label(idx: list[int], mode: str) -> list[str]:
    return [f"L{i}" for i in idx] if mode == "concat" and len(idx) > 1 else [""]


def _probe_dim(bb: Any, layers: Any, mode: str, norm: bool, device: str) -> tuple[int, int]:
    """(output bands, number of layer maps) from a tiny forward (works for any backbone implementation)."""
    from geodino.models.frozen import FastViT

    p = int(bb.patch_size)
    x = torch.zeros(1, int(bb.in_chans), 2 * p, 2 * p, device=device)
    model, eager = getattr(bb, "model", None), getattr(bb, "__dict__", {}).get("_eager_model")
    if isinstance(model, FastViT) and eager is not None:  # a compiled fast path would compile this shape for nothing
        bb.model = eager
    # one intra-op thread for these few tokens: with the CPU shared, the OpenMP team waited out a time slice at each
    # of the forward's barriers (4-tile raster, 2 cores, load 4-8, alternated: median 0.99 s, up to 3.4 s, against
    # 0.08 s); the sweep's forwards run with the threads as they were
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            # the short-backbone line of layers=four_last: `_layer_blocks` says it (it said twice, once from here)
            warnings.filterwarnings("ignore", message=r"layers=four_last on a backbone with")
            maps, _ = bb.features(x, layers=layers, norm=norm)
    finally:
        torch.set_num_threads(threads)
        if model is not None:
            bb.model = model
    d = int(maps[0].shape[1])
    return (d * len(maps) if mode == "concat" else d), len(maps)


def file_rule(
    path: str, bands: list[int] | None, cfg: EmbedConfig
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The (scales, offsets) a GeoTIFF/VRT declares for the bands read (GDAL <Scale>/<Offset>), when the run
    applies them: `file_scale` on and no rule given (`scale`, `band_scale`, `band_offset`; a STAC scene's
    raster:bands arrive as `band_scale`/`band_offset`, so an item's declaration wins over its file's tags). None
    when the file declares 1/0 for every band read, or `bands` picks a band it lacks (left to the reader's error).
    One header read, in `prepare` (once per process) and in the scenes' up-front check."""
    if not reads_file_rule(cfg):
        return None
    from geodino.data.headers import declared_rule

    fix = (
        "give one rule for all bands, which overrides the file's (--scale FACTOR, scale= in Python, or "
        "band_scale=[...] band_offset=[...]), or ignore the file's with file_scale=false"
    )
    return declared_rule(path, bands, reader="rasterio", fix=fix)


def cube_rule(source: Any, cfg: EmbedConfig) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The (scales, offsets) a datacube declares for the bands read (CF `scale_factor`/`add_offset`, kept raw by
    `CubeSource`), when the run applies them: by the same switches as a GeoTIFF's tags (`file_rule`: `file_scale`
    on, no rule given). None when every band read declares 1/0."""
    base = getattr(source, "base", source)  # a --bbox/--window reads a window of the cube
    scales, offsets = tuple(getattr(base, "scales", ())), tuple(getattr(base, "offsets", ()))
    if not reads_file_rule(cfg) or not scales or (all(v == 1.0 for v in scales) and not any(offsets)):
        return None
    return scales, offsets


def prepare(inp: Any, cfg: EmbedConfig, bb: Any) -> PreparedRun:
    """Everything a process needs: source, plan, band names, metadata (no pixels read yet)."""
    # the run's --bbox/--window: a pixel window of the input on its patch grid, read as a raster of its own
    opened = open_source(
        inp, variable=cfg.variable, bands=cfg.bands, nodata=cfg.nodata, time=cfg.time, sensor=cfg.sensor
    )
    source = windowed(opened, cfg, bb.patch_size)
    info = source.info
    window = source.window if isinstance(source, WindowSource) else (0, 0, info.width, info.height)
    _check_grid(info, cfg)
    check_bands_fit(source, cfg.bands, bb)
    check_band_order(source, bb, cfg.sensor)  # the backbone's bands in another order: refused
    p = int(bb.patch_size)
    _check_tiling(cfg, p)
    layers = parse_layers(cfg.layers)
    # probed where the weights are (a resume check, or a rank's object not yet moved to its cuda:LOCAL_RANK)
    try:
        dim, n_maps = _probe_dim(bb, layers, cfg.layer_mode, cfg.norm, weights_device(bb, cfg.device))
    except LayerIndexError as exc:  # a block past the depth: the line names the setting as embed takes it
        raise ConfigError(
            f"layers={cfg.layers} (--layers): {exc.detail}; negative indices count from the end"
        ) from None
    plan, margin = _make_run_plan(info, cfg, bb, dim)
    idx = _layer_blocks(bb, cfg, layers, n_maps)
    per = dim // len(_layer_label(idx, cfg.layer_mode))
    band_names = [f"{lab}{'_' if lab else ''}E{i:03d}" for lab in _layer_label(idx, cfg.layer_mode) for i in range(per)]
    declared, rule, ident_scale = _input_scaling(info, source, cfg, bb)
    l2 = cfg.dtype == "int8" if cfg.l2_normalize is None else bool(cfg.l2_normalize)
    meta, ident = _records(info, source, window, cfg, bb, plan, dim, idx, margin, rule.stored(), ident_scale, l2)
    return PreparedRun(source, plan, dim, band_names, meta, ident, l2, margin, rule, declared=declared)


def _check_grid(info: Any, cfg: EmbedConfig) -> None:
    """The input's grid must be one the output can hold: a CRS (unless allowed without), north-up to upsample, and
    north-up for a Zarr store."""
    unplaced: str = getattr(info, "unplaced", "")  # a cube's CRS its coordinates cannot carry, else ""
    if info.crs is None and unplaced:
        if not cfg.allow_no_crs:
            raise InputError(
                f"{unplaced}; or pass --allow-no-crs (allow_no_crs=True in Python) to embed it in pixel coordinates"
            )
        import warnings

        warnings.warn(f"{unplaced}; --allow-no-crs embeds it in pixel coordinates", stacklevel=3)
    elif info.crs is None:
        control = _control_points(info.path)
        if control and not cfg.allow_no_crs:
            raise InputError(
                f"input {info.path} is georeferenced by {control[0]} only, not by a geotransform; warp it to a grid "
                f"first (e.g. {control[1]}) and embed that, or pass --allow-no-crs (allow_no_crs=True in Python) to "
                "embed it in pixel coordinates"
            )
        if control:  # said once: the output is in pixel coordinates, the input's georeferencing is not carried
            import warnings

            warnings.warn(
                f"input {info.path} is georeferenced by {control[0]} only: --allow-no-crs embeds it in pixel "
                f"coordinates and the output does not carry its {control[0].split()[-1]} (warp it to a grid first, "
                f"e.g. {control[1]}, to keep its place)",
                stacklevel=3,
            )
        elif not cfg.allow_no_crs:
            from geodino.data.cube_open import is_cube_store

            how = (  # gdal_edit.py does not write a Zarr store's or NetCDF file's CRS
                "with rioxarray: ds.rio.write_crs('EPSG:...'), then save the store again"
                if is_cube_store(str(info.path))
                else f"gdal_edit.py -a_srs EPSG:... {info.path}"
            )
            raise InputError(
                f"input {info.path} has no CRS; set one ({how}) or pass --allow-no-crs (allow_no_crs=True in Python)"
            )
    t = info.transform
    if cfg.upsample and (t.b != 0 or t.d != 0):
        stem = Path(str(info.path)).stem
        raise InputError(  # the bilinear pass places pixels on north-up rows and columns of the input's grid
            f"input {info.path} has a rotated geotransform, which --upsample cannot write (it needs a north-up "
            "grid); drop --upsample (upsample= in Python; the patch-grid COG keeps the rotation), or warp the input "
            "north-up first "
            f"(gdalwarp {info.path} {stem}_north_up.tif) and embed that"
        )
    if (t.b != 0 or t.d != 0) and cfg.out and out_kind(Path(cfg.out)) == "zarr":
        # the store's 1-D x/y coordinates are what GDAL, rasterio and QGIS read: they would place it north-up
        raise InputError(
            f"input {info.path} has a rotated geotransform, which a Zarr store's x/y coordinates cannot carry "
            f"(GDAL and QGIS would place {cfg.out} north-up); write a COG instead (--out {Path(cfg.out).stem}.tif, "
            "out= in Python)"
        )


def _control_points(path: str) -> tuple[str, str] | None:
    """For a raster without a geotransform that is georeferenced by ground control points or RPCs: (what, e.g.
    "4 GCPs", a gdalwarp command that puts it on a grid); None otherwise (or for what rasterio cannot open: cubes)."""
    import warnings

    import rasterio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NotGeoreferencedWarning: that is the point
            with rasterio.open(path) as src:
                gcps, gcp_crs = src.gcps
                rpcs = src.rpcs
    except (rasterio.errors.RasterioIOError, TypeError, ValueError):
        return None
    if gcps:
        code = gcp_crs.to_string() if gcp_crs is not None else "EPSG:<the GCPs' CRS>"
        if "[" in code or "{" in code:  # WKT/JSON: a placeholder reads better in a one-line message
            code = "EPSG:<the GCPs' CRS>"
        name = f"{len(gcps)} GCP{'s' if len(gcps) != 1 else ''}"
        return name, f"gdalwarp -t_srs {code} {path} gridded.tif"
    if rpcs is not None:
        return "RPCs", f"gdalwarp -rpc -t_srs EPSG:4326 {path} gridded.tif"
    return None


def _check_tiling(cfg: EmbedConfig, p: int) -> None:
    """tile and overlap must be multiples of the patch size `p`, and the overlap at most half a tile."""
    for name, value, default, lowest in (
        ("tile", cfg.tile, EmbedConfig.tile, 1),
        ("overlap", cfg.overlap, EmbedConfig.overlap, 0),
    ):
        if value % p:
            src = " (the default)" if value == default else ""
            raise ConfigError(
                f"{name}={value}{src} must be a multiple of the backbone's patch size {p}; pass --{name} "
                f"{nearest_multiples(value, p, lowest=lowest)} ({name}= in Python)"
            )
    if 2 * cfg.overlap > cfg.tile:
        src = " (the default)" if cfg.overlap == EmbedConfig.overlap else ""
        raise ConfigError(
            f"overlap={cfg.overlap}{src} must be at most half of tile={cfg.tile}; pass --overlap "
            f"{cfg.tile // 2 // p * p} or less (a multiple of the patch size {p}), or a --tile of at least "
            f"{2 * cfg.overlap} (overlap= and tile= in Python)"
        )


def _make_run_plan(info: Any, cfg: EmbedConfig, bb: Any, dim: int) -> tuple[Plan, int]:
    """The tile plan of the input and the tile margin, checked against the overlap and the memory they need."""
    p = int(bb.patch_size)
    itemsize = {"float32": 4, "float16": 2, "int8": 1}[cfg.dtype]
    chunk = cfg.chunk or auto_chunk(dim, itemsize)
    largest = int(((2**31 - 1) // (dim * itemsize)) ** 0.5)  # a compressed chunk holds < 2 GiB (the codec's limit)
    if chunk > largest:  # was "the work folder ... is damaged" from the store's read-back, or an EiB allocation
        raise ConfigError(
            f"--chunk {chunk} (chunk= in Python) makes one storage chunk of "
            f"{dim * itemsize * chunk**2 / 2**30:.1f} GiB ({dim} bands x {chunk} x {chunk} cells), over the 2 GiB a "
            f"chunk can hold; pass --chunk {largest} or less, or leave it out (automatic: {auto_chunk(dim, itemsize)})"
        )
    plan = make_plan(
        info.height,
        info.width,
        info.transform,
        patch=int(bb.patch_size),
        tile=cfg.tile,
        overlap=cfg.overlap,
        chunk=chunk,
        block_rows=cfg.block_rows or None,
        max_block_cols=cfg.max_block_cols,
    )
    margin = cfg.effective_margin(p)
    check_margin(margin, cfg.overlap, p)
    check_memory(plan, cfg, info, dim, int(getattr(bb, "embed_dim", 0) or dim))
    return plan, margin


def _layer_blocks(bb: Any, cfg: EmbedConfig, layers: Any, n_maps: int) -> list[int]:
    """The backbone blocks `layers` names; refused when the backbone returned another number of feature maps."""
    idx = backbone_layer_indices(layers, bb)  # a fixed depth (the colour baseline) is no short backbone
    if len(idx) != n_maps:
        raise ConfigError(
            f"backbone {describe_backbone(bb)['model_spec']} returned {plural(n_maps, 'feature map')} for layers="
            f"{cfg.layers!r} (blocks {idx}); pass layers naming blocks it has (it has {getattr(bb, 'n_blocks', '?')})"
        )
    return idx


def _input_scaling(info: Any, source: Any, cfg: EmbedConfig, bb: Any) -> tuple[Any, ScaleRule, str]:
    """The input's declared scale/offset rule (a raster's `file_rule`, a cube's `cube_rule`), the scaling's rule
    and its text for the resume identity ("" when nothing but the dtype rule could apply: as runs recorded it);
    uint8 input with a sensor of 16-bit DN is refused here, before anything is written."""
    cube = source.kind == "datacube"
    declared = cube_rule(source, cfg) if cube else file_rule(info.path, source.bands, cfg)
    explicit = cfg.sensor or cfg.scale is not None or recorded_scale(bb) is not None
    explicit = explicit or cfg.band_scale is not None or cfg.band_offset is not None or declared is not None
    n_in = getattr(source, "input_count", None)  # the input's bands before --bands selects some
    by = DECLARED_BY_CF if cube else DECLARED_BY_FILE
    if not explicit:  # the dtype rule applies once the sweep reads the input: a type without a default, refused now
        refuse_without_rule(info)
    rule = (
        input_scaler(info, cfg, bb, n_in, declared, declared_by=by)[1] if explicit else ScaleRule.by_dtype(info.dtype)
    )
    sensor = scaling_sensor(cfg, bb, n_in, info.descriptions)
    if sensor is not None:  # uint8 input with a sensor of 16-bit DN is refused before anything is written
        from geodino.data.sensors import check_bit_depth

        # before the unit warnings: a warning that the same DN scale cannot reach the means came first, then this
        check_bit_depth(str(info.path), info.dtype, sensor, kind=source.kind)
    if sensor is not None and declared is None and cfg.band_scale is None and cfg.band_offset is None:
        if cfg.sensor:
            warn_dn_as_reflectance(info, sensor, bb)  # --sensor's rule applies: 16-bit DN read as reflectance?
        else:
            warn_record_units(info, bb)  # the backbone's recorded DN step applies: in its mean/std's units?
    return declared, rule, rule.stored() if explicit else ""


def input_bounds(info: Any, source: Any) -> list[float]:
    """[left, bottom, right, top] of the input pixels the run reads, in the input's CRS (pixel coordinates without
    one): the window's pixels that lie on the raster (a --bbox/--window), else the whole raster; on a rotated grid
    the envelope of their four corners. The feature grid's last partial cells reach up to p-1 pixels past it."""
    x0, y0, x1, y1 = 0, 0, info.width, info.height
    if isinstance(source, WindowSource):  # pixels of the window beyond the raster read as nodata: not input
        c, r, _, _ = source.window
        base = source.base.info
        x0, y0 = max(0, -c), max(0, -r)
        x1, y1 = max(x0, min(info.width, base.width - c)), max(y0, min(info.height, base.height - r))
    a, b, c0, d, e, f = tuple(info.transform)[:6]
    xs = [a * x + b * y + c0 for x in (x0, x1) for y in (y0, y1)]
    ys = [d * x + e * y + f for x in (x0, x1) for y in (y0, y1)]
    return [float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))]


def _records(
    info: Any,
    source: Any,
    window: Any,
    cfg: EmbedConfig,
    bb: Any,
    plan: Plan,
    dim: int,
    idx: list[int],
    margin: int,
    input_scale: str,
    ident_scale: str,
    l2: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The output's metadata and the run's identity (the settings a partial output records; a resume must match)."""
    from geodino import __version__

    meta = {
        "version": __version__,  # the tag GEODINO_VERSION in a COG
        **describe_backbone(bb),
        "layers": idx,
        "layer_mode": cfg.layer_mode,
        "final_norm": cfg.norm,
        "l2_normalize": l2,
        "dtype": cfg.dtype,
        "dequantization": DEQUANT_RULE if cfg.dtype == "int8" else "none",
        "nodata": "-128" if cfg.dtype == "int8" else "nan",
        "input": str(info.path),
        "input_bands": cfg.bands or list(range(1, info.count + 1)),
        "input_window": list(window),  # col, row, width, height in input pixels (--bbox/--window; else all)
        "input_bounds": input_bounds(info, source),  # the output's last partial cells reach past it
        "input_nodata": info.nodata,  # declared or --nodata: decides which input pixels are valid
        "input_scale": input_scale,
        "tile": cfg.tile,
        "overlap": cfg.overlap,
        "blend": cfg.blend,
        "margin": margin,
        "grid": "input pixels (bilinear upsampling)" if cfg.upsample else f"patch grid ({bb.patch_size} px cells)",
    }
    ident = {
        "plan": plan.to_dict(),
        "input": str(info.path),
        "shape": [info.count, info.height, info.width],
        "backbone": meta["model_spec"],
        "fingerprint": meta["model_fingerprint"],
        "dim": dim,
        **{k: getattr(cfg, k) for k in IDENT_KEYS},
        "margin": margin,
        "blocks": idx,  # what `layers` resolved to: a name's rule may change between versions (cd448c2)
        "scale": ident_scale,
        "l2": l2,
    }
    identity = input_identity(info.path)
    if identity:  # metadata only: a resume record of an earlier version, without it, must still match
        meta["input_identity"] = identity
    if isinstance(source, WindowSource):  # only then: a full-scene record of an earlier version resumes as it was
        ident["window"] = list(window)
    # a cube's date (the `time` option) or a raster's acquisition time: recorded, and a resume must embed the same one
    if info.time is not None:
        meta["input_time"] = ident["time"] = info.time
    # a cube's variables, in band order: in the identity the up-front check of a resumed many-scene run compares
    # (`pipeline.check_started`), so another variable list is refused before any scene runs
    ident = with_input_variables(ident, source)
    return meta, ident


# ---------------------------------------------------------------------------------------------------------------
# memory


# ---------------------------------------------------------------------------------------------------------------
# orchestration


def out_kind(out: Path) -> str:
    """ "cog" or "zarr" by the output's suffix; one line for any other."""
    suffix = out.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return "cog"
    if suffix == ".zarr":
        return "zarr"
    raise ConfigError(f"output {out} must end in .tif (COG) or .zarr (GeoZarr)")
