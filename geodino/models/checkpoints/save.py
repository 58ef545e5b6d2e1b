"""Writing backbones: plain official `.pth`, `.safetensors` with the build kwargs and normalisation record in
the metadata, the HF / timm layouts (`save_backbone`) and the three-file export (`save_export`, with its STAC
item), each atomically."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from geodino.errors import ConfigError
from geodino.models.checkpoints.files import (
    HEADS_SUFFIX,
    SAFETENSORS_CONFIG_KEY,
    export_stem,
    heads_path,
    write_heads,
)
from geodino.models.checkpoints.keymap import LOCAL_NORM_KEY
from geodino.models.checkpoints.normalization import NORMALIZATION_KEY, check_normalization, to_json
from geodino.models.checkpoints.reproducible import save_safetensors_file, save_torch

__all__ = ["export_paths", "refuse_sidecar_name", "save_backbone", "save_export", "save_pth", "save_safetensors"]


def refuse_sidecar_name(path: str | Path, shown: str | Path | None = None) -> None:
    """One line for a backbone `.pth` named `X.heads.pth`: that is the sidecar name of `X.pth`, which every reader
    of `X.pth` opens for its build kwargs and normalisation record (a backbone written there replaced the record of
    an export X with `--overwrite`, and sat beside an official `X.pth` as its sidecar). `shown`: the name the user
    gave (`export CKPT X.heads` writes X.heads.pth)."""
    p = Path(path)
    if p.name.lower().endswith(HEADS_SUFFIX):
        base = p.name[: -len(HEADS_SUFFIX)]
        raise ConfigError(
            f"output {shown or path}: a backbone named {p.name} takes the name of the heads sidecar that geodino "
            f"reads beside {base}.pth (its build kwargs and normalisation); name it without '.heads', "
            f"e.g. {p.with_name(base + '_backbone.pth')}"
        )


def _state_of(obj: nn.Module | Mapping[str, Tensor]) -> dict[str, Tensor]:
    state = obj.state_dict() if isinstance(obj, nn.Module) else dict(obj)
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def _config_of(obj: Any, config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if config is not None:
        return dict(config)
    cfg = getattr(obj, "config", None)
    return dict(cfg) if isinstance(cfg, Mapping) else None


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """A write of `path` that the storage refused (full disk, quota, file-size limit) raised as an OSError naming
    `path` (`storage_errors.named_refusal`): torch.save's and safetensors' errors name no file, so the CLI's line
    could not say which output failed."""
    try:
        yield
    except Exception as exc:
        from geodino.storage_errors import named_refusal

        refused = named_refusal(exc, path)
        if refused is None:
            raise
        raise refused from exc


def save_pth(obj: nn.Module | Mapping[str, Tensor], path: str | Path) -> Path:
    """Write a plain state_dict (official layout) atomically; loadable with weights_only=True and strict=True
    by the official code. The build kwargs are not stored in the .pth (it stays a pure official file): they go
    into the `.safetensors` metadata and the heads sidecar (`save_export`)."""
    from geodino.io import atomic_path

    path = Path(path).expanduser()
    with _naming(path), atomic_path(path) as tmp:
        save_torch(_state_of(obj), tmp)
    return path


def save_safetensors(
    obj: nn.Module | Mapping[str, Tensor],
    path: str | Path,
    *,
    config: Mapping[str, Any] | None = None,
    normalization: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a state_dict as .safetensors atomically; build kwargs go into the metadata (`geodino_config`), the
    normalisation record into `geodino_normalization`, and `metadata` as given."""
    from geodino.io import atomic_path

    path = Path(path).expanduser()
    state = {k: v.clone() if v.data_ptr() in _shared(obj) else v for k, v in _state_of(obj).items()}
    meta = {"format": "pt", **dict(metadata or {})}
    cfg = _config_of(obj, config)
    if cfg:
        meta[SAFETENSORS_CONFIG_KEY] = json.dumps(cfg)
    if normalization:
        meta[NORMALIZATION_KEY] = to_json(check_normalization(normalization, str(path)))
    with _naming(path), atomic_path(path) as tmp:
        save_safetensors_file(state, tmp, metadata=meta)
    return path


def _shared(obj: Any) -> set[int]:
    """Storage pointers used by more than one tensor (safetensors refuses shared tensors)."""
    state = obj.state_dict() if isinstance(obj, nn.Module) else obj
    seen: dict[int, int] = {}
    for v in state.values():
        if isinstance(v, Tensor) and not v.is_meta:
            seen[v.data_ptr()] = seen.get(v.data_ptr(), 0) + 1
    return {p for p, n in seen.items() if n > 1}


def save_backbone(
    obj: nn.Module | Mapping[str, Tensor],
    path: str | Path,
    *,
    layout: str = "official",
    config: Mapping[str, Any] | None = None,
    normalization: Mapping[str, Any] | None = None,
) -> Path:
    """Save a backbone in `layout` (official | hf | timm): `.safetensors` or `.pth` by suffix; `hf` writes a
    folder with config.json, model.safetensors and preprocessor_config.json (loadable by
    `DINOv3ViTModel.from_pretrained` / `AutoImageProcessor`); `timm` with no suffix writes a timm folder
    (`timm.create_model("local-dir:PATH", pretrained=True)`).

    `normalization` (a record, see `checkpoints.normalization`) travels with every format: safetensors
    metadata, the `X.heads.pth` sidecar of a `.pth`, the HF preprocessor config, the timm `pretrained_cfg`. A
    `.pth` always gets its sidecar (build kwargs, `normalization: None` when there is no record), replacing any
    earlier one."""
    from geodino.io import make_dirs
    from geodino.run_lock import locked_output

    path = Path(path).expanduser()
    norm = check_normalization(normalization, str(path))
    if layout not in ("official", "hf", "timm"):
        raise ConfigError(f"unknown checkpoint layout {layout!r}; use official, hf or timm")
    if layout != "hf":  # an HF folder has no sidecar
        refuse_sidecar_name(path)
    make_dirs(path.parent)  # the lock file sits beside the output
    # one writer at a time per name (as `save_export`, whose lock it is for X.pth and X.safetensors): two converts
    # onto one name at once could leave the weights of one beside the `.heads.pth` sidecar of the other
    with locked_output(export_stem(path), shown=path):
        return _save_backbone(_state_of(obj), path, layout, _config_of(obj, config), norm)


def _save_backbone(
    state: dict[str, Tensor], path: Path, layout: str, cfg: dict[str, Any] | None, norm: dict[str, Any] | None
) -> Path:
    """`save_backbone`'s writes, under its lock."""
    if layout == "hf":
        from geodino.models.checkpoints.hf import write_hf_folder

        with _naming(path):
            return write_hf_folder(state, path, config=cfg, normalization=norm)
    elif layout == "timm":
        from geodino.models.checkpoints.timm import official_to_timm, timm_metadata, write_timm_folder

        if not path.suffix:
            with _naming(path):
                return write_timm_folder(state, path, config=cfg, normalization=norm)
        meta = timm_metadata(state, cfg, norm)
        state = official_to_timm(state)
        if path.suffix == ".safetensors":
            return save_safetensors(state, path, normalization=norm, metadata=meta)
        extra = {k: json.loads(meta[k]) for k in ("pretrained_cfg", "model_args")}
        extra["architecture"] = meta["architecture"]
        if LOCAL_NORM_KEY in meta:  # the official model has local_cls_norm, which timm does not store
            extra[LOCAL_NORM_KEY] = True
        if norm:
            extra["normalization"] = norm
        return _pth_and_sidecar(state, path, extra)  # the sidecar: timm's architecture, heads, RoPE base
    if path.suffix == ".safetensors":
        return save_safetensors(state, path, config=cfg, normalization=norm)
    # always, also without a record: the build kwargs the weights cannot show (LayerNorm eps, RoPE settings) go
    # with the file, and an earlier file's sidecar (its mean/std and kwargs) never stays beside new weights. The
    # .pth itself stays a plain state_dict that the official code loads.
    return _pth_and_sidecar(state, path, {"backbone": dict(cfg or {}), "normalization": norm})


def _pth_and_sidecar(state: dict[str, Tensor], path: Path, sidecar: dict[str, Any]) -> Path:
    """`path` (.pth) and its `.heads.pth` sidecar (`sidecar`'s entries), written under temporary names and renamed
    into place once both are written, the earlier sidecar removed just before (as `_stage_export` does): the sidecar
    written after the weights were in place left, when it failed (a full disk), the new weights beside the earlier
    file's sidecar, whose build kwargs and normalisation record `info` and the loaders then applied to them."""
    import os

    from geodino.io import fsync_path, refuse_folder_in_the_way, temp_name

    hp = heads_path(path)
    for p in (path, hp):
        refuse_folder_in_the_way(p)
    staged = [temp_name(p) for p in (path, hp)]
    try:
        save_pth(state, staged[0])
        with _naming(hp):
            write_heads(staged[1], {}, **sidecar)
        hp.unlink(missing_ok=True)
        os.replace(staged[0], path)
        os.replace(staged[1], hp)
    finally:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
    fsync_path(path.parent)
    return path


def export_paths(out: str | Path) -> tuple[Path, Path, Path]:
    """(`X.pth`, `X.safetensors`, `X.heads.pth`) for an export named `X`, `X.pth`, `X.pt` or `X.safetensors`."""
    stem = export_stem(out)
    pth = stem.with_name(stem.name + ".pth")
    refuse_sidecar_name(pth, out)
    return pth, stem.with_name(stem.name + ".safetensors"), heads_path(pth)


def save_export(
    out: str | Path,
    state: nn.Module | Mapping[str, Tensor],
    config: Mapping[str, Any] | None,
    heads: Mapping[str, nn.Module | Mapping[str, Tensor]] | None = None,
    *,
    normalization: Mapping[str, Any] | None = None,
    stac_properties: Mapping[str, Any] | None = None,
    **extra: Any,
) -> list[Path]:
    """Write an export: the backbone as `X.pth` and `X.safetensors` (official layout, build kwargs and the
    normalisation record in the safetensors metadata) and the sidecar `X.heads.pth`
    (`{"dino_head", "ibot_head", "backbone": kwargs, "normalization": record, **extra}`); all three are written
    under temporary names first and then renamed into place (an earlier export's files removed just before), so
    an interrupted (re-)export never leaves a new file beside an old one. Then, once all three are in place, the
    STAC item `X.stac.json` that catalogues them (MLM extension; `stac_properties` go into its properties:
    `checkpoints.stac_item`). Returns the three weight file paths."""
    from geodino.io import make_dirs, refuse_folder_in_the_way
    from geodino.models.checkpoints.stac_item import export_item_path, write_export_item
    from geodino.run_lock import locked_output

    pth, st, hp = export_paths(out)
    norm = check_normalization(normalization, str(pth))
    for p in (pth, st, hp):
        refuse_folder_in_the_way(p)
    make_dirs(pth.parent)
    # one writer at a time per export name: a second export onto X stops with one line while the first writes
    with locked_output(pth.with_suffix(""), what="export"):
        _stage_export(pth, st, hp, state, config, heads, norm, extra)
        with _naming(export_item_path(pth)):
            write_export_item([pth, st, hp], state, config, norm, stac_properties)
    return [pth, st, hp]


def _stage_export(
    pth: Path,
    st: Path,
    hp: Path,
    state: nn.Module | Mapping[str, Tensor],
    config: Mapping[str, Any] | None,
    heads: Mapping[str, nn.Module | Mapping[str, Tensor]] | None,
    norm: Mapping[str, Any] | None,
    extra: Mapping[str, Any],
) -> None:
    """Write the three files of `save_export` and swap them in as one set (see there)."""
    import os

    from geodino.io import temp_name
    from geodino.models.checkpoints.stac_item import export_item_path

    # the three files are written under temporary names and renamed into place only once all are written, so a
    # re-export killed or failing part-way leaves the earlier export whole; the earlier item and companions go
    # just before the renames, so that no moment shows a new file beside an old one (only fewer files)
    staged = [temp_name(p) for p in (pth, st, hp)]
    try:
        save_pth(state, staged[0])
        save_safetensors(state, staged[1], config=config, normalization=norm)
        with _naming(hp):
            write_heads(staged[2], heads or {}, backbone=dict(config or {}), normalization=norm, **extra)
        export_item_path(pth).unlink(missing_ok=True)  # never describing (and checksumming) other weights
        for p in (st, hp):  # the .pth is replaced by its rename, first
            p.unlink(missing_ok=True)
        for tmp, p in zip(staged, (pth, st, hp)):
            os.replace(tmp, p)
    finally:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
