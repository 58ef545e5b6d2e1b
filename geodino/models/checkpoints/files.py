"""Checkpoint files: the one safe reader, the one strict loader, the heads sidecar.

Every reader uses `torch.load(weights_only=True)` (or safetensors): a checkpoint that needs pickled Python code
is refused, never executed. Every failure is one `CheckpointError` line naming the file. This module knows
files and state_dicts only (no model architecture), so every other checkpoint module and the training code
can build on it without an import cycle.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from geodino.errors import CheckpointError, plural

__all__ = [
    "GATHER_SUFFIX",
    "HEADS_SUFFIX",
    "HEAD_NAMES",
    "SAFETENSORS_CONFIG_KEY",
    "BackboneWeights",
    "check_fits",
    "gather_target",
    "heads_path",
    "load_file",
    "load_meta",
    "load_strict",
    "read_file",
    "read_heads",
    "read_sidecar",
    "strict_mismatch",
    "sweep_gathers",
    "write_heads",
]

HEAD_NAMES = ("dino_head", "ibot_head")
HEADS_SUFFIX = ".heads.pth"
SAFETENSORS_CONFIG_KEY = "geodino_config"  # the build kwargs in a .safetensors export's metadata

_FOREIGN_MAGIC = {
    b"II*\x00": "a TIFF raster",
    b"MM\x00*": "a TIFF raster",
    b"II+\x00": "a BigTIFF raster",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\x89HDF": "an HDF5/NetCDF file",
}


@dataclass
class BackboneWeights:
    """A backbone state_dict in the official layout, with its build kwargs when the file carries them."""

    state: dict[str, Tensor]
    source: Path
    layout: str  # official | hf | timm (the layout the file was in)
    kind: str = "backbone"  # backbone | geodino-ssl | geodino-export | official-eval | wrapped | hf-folder
    config: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    # the input normalisation the file records (`checkpoints.normalization`), and which file/key it came from
    normalization: dict[str, Any] | None = None
    normalization_from: str = ""
    # the file held several backbones (teacher and student) and `which` chose this one
    several: bool = False
    # an HF / timm file (neither stores `local_cls_norm`) records whether the official model it came from has one
    # (`keymap.LOCAL_NORM_KEY`); None when it records nothing
    local_cls_norm: bool | None = None
    # which network of a file holding several the backbone is, when the file names it (a distill checkpoint's
    # "student tiny (ema), step 2"); '' otherwise
    network: str = ""


# ----------------------------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------------------------


def _foreign_file(path: Path) -> str | None:
    """What `path` is when it is plainly not a weights file (a raster, an image, text); None otherwise."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    for magic, what in _FOREIGN_MAGIC.items():
        if head.startswith(magic):
            return what
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not head or all(c.isprintable() or c in "\t\r\n" for c in text):
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"a text file: {first!r}" if first else "an empty file"
    return None


def _first_line(exc: BaseException, limit: int = 160) -> str:
    """The library's reason in one line: its first sentence when the line is long (torch's zip errors go on
    about filing bug reports), else the line cut with an ellipsis, never mid-word without one."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0]
    if len(line) <= limit:
        return line
    end = line.find(". ", 0, limit)
    return line[:end] if end > 0 else line[: limit - 3].rstrip() + "..."


def _torch_load(path: Path) -> Any:
    """torch.load with weights_only=True; every failure becomes one CheckpointError line naming the file."""
    what = _foreign_file(path)
    if what is not None:
        raise CheckpointError(
            f"checkpoint {path} cannot be read: {path.name} is not a checkpoint ({what}); pass a .pth/.pt/.ckpt or "
            ".safetensors weights file (for a backbone also a Hugging Face model folder, arch:vit_small or timm:NAME)"
        )
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # legacy (non-zip) serialization cannot be memory-mapped
            if "mmap" not in str(exc) and "zip" not in str(exc).lower():
                raise
            with warnings.catch_warnings():  # a plain pickle: torch's protocol warning came before the error line
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        glob = next((ln.strip() for ln in text.splitlines() if "Unsupported global" in ln), None)
        if glob is not None:
            # the class it pickles, not torch's advice cut at 160 characters ("add_safe_globals([__main__")
            found = re.search(r"GLOBAL (\S+) was not an allowed global", glob)
            glob = f"it pickles {found.group(1)}" if found else glob[:160]
            raise CheckpointError(
                f"checkpoint {path} needs pickled Python code to load ({glob}); refused for safety "
                "(weights_only=True): re-save it as a plain state_dict (torch.save(model.state_dict(), ...)) "
                "or as .safetensors"
            ) from exc
        detail = next((ln.strip() for ln in text.splitlines() if "Unsupported" in ln or "invalid" in ln), "")
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a torch file ({detail[:120] or 'unreadable pickle'}); "
            "re-download or re-export it"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({_first_line(exc)}); re-download or re-export it"
        ) from exc


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own SafetensorError / OSError types
        raise CheckpointError(
            f"checkpoint {path} is not a readable safetensors file ({_first_line(exc)}); re-download it"
        ) from exc
    return state, meta


def _looks_like_safetensors(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 0 < n < 100_000_000 and head[8:9] == b"{"


def read_file(path: str | Path) -> tuple[Any, dict[str, str]]:
    """The raw object of a checkpoint file (and its safetensors metadata), read safely."""
    path = Path(path).expanduser()
    if not path.exists():
        from geodino.models.checkpoints.folders import foreign_prefix

        if foreign := foreign_prefix(str(path)):
            raise CheckpointError(f"checkpoint {path} not found: {foreign}")
        near = sorted(p.name for p in path.parent.glob(f"*{path.suffix}"))[:5] if path.parent.is_dir() else []
        hint = f" ({path.parent} holds {', '.join(near)})" if near else ""
        raise CheckpointError(
            f"checkpoint {path} not found{hint}; pass an existing checkpoint file (.ckpt, .pth, .safetensors) or an "
            "HF folder"
        )
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; pass a file, or an HF folder with config.json")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); re-download or re-export it")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    if path.suffix not in (".pth", ".pt", ".ckpt", ".bin") and _looks_like_safetensors(path):
        return _read_safetensors(path)
    return _torch_load(path), {}


def load_file(path: str | Path) -> dict[str, Any]:
    """A `.pth`/`.ckpt`/`.safetensors` file, or a Lightning/DCP sharded checkpoint folder, as one dict on CPU."""
    path = Path(path).expanduser()
    if path.is_dir():
        return _load_sharded(path)
    obj, _ = read_file(path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, not a dict of tensors")
    return obj


def load_meta(path: str | Path) -> dict[str, Any]:
    """A checkpoint's entries besides the weights (`global_step`, `geodino`, ...): a sharded folder's `meta.pt`
    alone, never gathered (a resume check needs no weights; gathering a 7B run's model and optimizer on every rank
    would write and load a full copy each), or a checkpoint file's whole dict."""
    path = Path(path).expanduser()
    if not path.is_dir():
        return load_file(path)
    obj, _ = read_file(_meta_file(path))
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path}/meta.pt holds a {type(obj).__name__}, not a dict")
    return obj


def _meta_file(path: Path) -> Path:
    """The `meta.pt` of a Lightning/DCP sharded checkpoint folder (one line when it has none)."""
    meta = path / "meta.pt"
    if not meta.is_file():
        from geodino.models.checkpoints.folders import run_checkpoint_hint

        raise CheckpointError(
            f"checkpoint folder {path} has no meta.pt; pass a checkpoint file or a sharded folder"
            + run_checkpoint_hint(path)
        )
    return meta


GATHER_SUFFIX = ".full.pt"  # `gather_target`: what a sharded folder NAME is gathered into, as NAME.full.pt


def gather_target(path: Path) -> Path:
    """The file a sharded checkpoint folder `path` is gathered through, beside it. Only ever written under its
    `geodino.io_temps.temp_name` (`.STEM.tmp-TAG-PID.SUFFIX.full.pt`: the writer's host tag and pid, so that ranks
    on several hosts sharing the folder never collide) and deleted when the gather ends; `sweep_temps` of this path
    removes what a killed gather left."""
    return path.parent / f"{path.name}{GATHER_SUFFIX}"


def sweep_gathers(folder: str | Path) -> list[Path]:
    """Remove from `folder` what killed gathers of any sharded folder in it left (`sweep_temps` of each one's
    `gather_target`: a dead pid on this host, another host's only when untouched for `STALE_AFTER_S`). Targets are
    found from the `temp_name` copies and from the `.NAME.full-HOST-PID.pt` copies of geodino before it (HOST the raw
    host name), so those of checkpoints rotated away (never gathered again) go too."""
    import re

    from geodino.io_temps import legacy_gather_owner, sweep_temps

    folder = Path(folder).expanduser()
    pattern = re.compile(rf"\.(.+)\.tmp-[A-Za-z0-9_-]+?(\.[^/]*{re.escape(GATHER_SUFFIX)}|{re.escape(GATHER_SUFFIX)})")
    targets: set[str] = set()
    try:
        for e in os.scandir(folder):
            if m := pattern.fullmatch(e.name):
                targets.add(m[1] + m[2])
            elif legacy := legacy_gather_owner(e.name):  # NAME as sweep_temps splits it (`my.full-run.ckpt`)
                targets.add(legacy[0] + GATHER_SUFFIX)
    except OSError:
        return []
    return [p for name in sorted(targets) for p in sweep_temps(folder / name)]


def _load_sharded(path: Path) -> dict[str, Any]:
    """Gather a Lightning/DCP sharded checkpoint folder into one full dict on CPU (for resume, export and init),
    through a temporary file beside it (`gather_target`); first removes what killed gathers of it left."""
    meta = _meta_file(path)
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    from geodino.io_temps import sweep_temps, temp_name

    target = gather_target(path)
    sweep_temps(target)
    tmp = temp_name(target)  # unique per process across hosts (writer_tag), as every geodino temporary
    try:
        dcp_to_torch_save(str(path), str(tmp))
        full = torch.load(tmp, map_location="cpu", weights_only=True)
    finally:
        tmp.unlink(missing_ok=True)
    full.update(torch.load(meta, map_location="cpu", weights_only=True))
    return full


# ----------------------------------------------------------------------------------------------------------------
# the heads sidecar (`X.heads.pth` next to an exported `X.pth`)
# ----------------------------------------------------------------------------------------------------------------


EXPORT_SUFFIXES = (".pth", ".pt", ".safetensors")


def export_stem(out: str | Path) -> Path:
    """The export name `X` of `X`, `X.pth`, `X.pt` or `X.safetensors` (`~` expanded): what an export's files
    (`X.pth`, `X.safetensors`, `X.heads.pth`, `X.stac.json`) and its output lock are named after."""
    out = Path(out).expanduser()
    return out.with_suffix("") if out.suffix in EXPORT_SUFFIXES else out


def heads_path(backbone_file: str | Path) -> Path:
    """`X.heads.pth` for the backbone file `X.pth` / `X.safetensors` / `X`."""
    p = Path(backbone_file)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(stem + HEADS_SUFFIX)


def write_heads(path: str | Path, heads: Mapping[str, nn.Module | Mapping[str, Tensor]], **extra: Any) -> Path:
    """Write `{"dino_head": state, "ibot_head": state, **extra}` atomically (the heads sidecar format)."""
    from geodino.io import atomic_path
    from geodino.models.checkpoints.reproducible import save_torch

    obj: dict[str, Any] = {}
    for name, h in heads.items():
        state = h.state_dict() if isinstance(h, nn.Module) else h
        if state:
            obj[name] = {k: v.detach().cpu() for k, v in state.items()}
    obj.update(extra)
    path = Path(path)
    with atomic_path(path) as tmp:
        save_torch(obj, tmp)
    return path


def read_heads(path: str | Path) -> tuple[dict[str, dict[str, Tensor]], dict[str, Any]]:
    """(heads found, the rest) of a heads file: `{"dino_head": {...}, "ibot_head": {...}, "backbone": {...}}`
    or a flat dict with `dino_head.*` / `ibot_head.*` keys."""
    obj = load_file(path)
    heads = {h: dict(obj[h]) for h in HEAD_NAMES if isinstance(obj.get(h), Mapping)}
    if len(heads) < len(HEAD_NAMES):
        flat = {h: {k[len(h) + 1 :]: v for k, v in obj.items() if k.startswith(h + ".")} for h in HEAD_NAMES}
        heads = {h: s for h, s in flat.items() if s} or heads
    prefixes = tuple(h + "." for h in HEAD_NAMES)
    rest = {k: v for k, v in obj.items() if k not in HEAD_NAMES and not k.startswith(prefixes)}
    return heads, rest


def read_sidecar(path: Path) -> dict[str, Any]:
    """The non-head entries of the `X.heads.pth` file next to `X.pth` (`{}` when absent or unreadable: the
    sidecar only adds optional build kwargs and the normalisation record)."""
    side = heads_path(path)
    if not side.is_file():
        return {}
    try:
        obj = torch.load(side, map_location="cpu", weights_only=True)
    except Exception:  # an unreadable sidecar only loses the optional extras
        return {}
    return {k: v for k, v in obj.items() if k not in HEAD_NAMES} if isinstance(obj, Mapping) else {}


def sidecar_has_heads(path: str | Path) -> bool:
    """Whether the `X.heads.pth` next to `X` holds DINO/iBOT heads (an export's), not only build kwargs and the
    normalisation record (what `save_backbone` writes beside every `.pth`); memory-mapped, so a large head costs
    nothing to ask about. An unreadable sidecar counts as holding heads (the loader then says what is wrong)."""
    side = heads_path(path)
    if not side.is_file():
        return False
    try:
        obj = torch.load(side, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # legacy (non-zip) or damaged: let the loader report it
        return True
    return isinstance(obj, Mapping) and any(
        isinstance(k, str) and (k in HEAD_NAMES or k.startswith(tuple(h + "." for h in HEAD_NAMES))) for k in obj
    )


def sidecar_config(path: Path) -> dict[str, Any] | None:
    """Build kwargs from the `X.heads.pth` file that `geodino export` writes next to `X.pth` (None when absent)."""
    cfg = read_sidecar(path).get("backbone")
    return dict(cfg) if isinstance(cfg, Mapping) and cfg else None


# ----------------------------------------------------------------------------------------------------------------
# strict loading
# ----------------------------------------------------------------------------------------------------------------


def _shape(t: Tensor) -> str:
    return "[" + ",".join(str(s) for s in t.shape) + "]"


def _more(items: list, n: int = 3) -> str:
    return " ..." if len(items) > n else ""


def strict_mismatch(
    own: Mapping[str, Tensor], state: Mapping[str, Tensor]
) -> tuple[str, list[tuple[str, Tensor, Tensor]]]:
    """('' when `state` fits `own` key for key and shape for shape, else a description; the shape mismatches)."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [(k, state[k], v) for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    parts = []
    if unexpected:
        lacks = f"{plural(len(unexpected), 'key')} the model lacks"
        parts.append(f"unexpected {unexpected[:3]}{_more(unexpected)} ({lacks})")
    if shapes:
        shown = ", ".join(f"{k} {_shape(a)} in the file vs {_shape(b)} in the model" for k, a, b in shapes[:3])
        parts.append(f"{plural(len(shapes), 'shape mismatch', 'shape mismatches')}: {shown}{_more(shapes)}")
    if missing:
        parts.append(f"{plural(len(missing), 'missing key')}: {', '.join(missing[:3])}{_more(missing)}")
    return "; ".join(parts), shapes


def incomplete_hint(own: Mapping[str, Tensor], state: Mapping[str, Tensor]) -> str:
    """'' unless the file only lacks keys (every key it has fits): then the likelier cause, an incomplete or
    damaged file, is named before the architecture hint."""
    fits = all(k in own and tuple(v.shape) == tuple(own[k].shape) for k, v in state.items())
    if fits and len(state) < len(own):
        return "every key the file has fits, so it may be incomplete or damaged (re-export or re-download it); else "
    return ""


def _copy_into(dst: Tensor, src: Tensor) -> None:
    """Copy a full tensor into a possibly sharded (DTensor) destination."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if isinstance(dst, DTensor):
        dst.copy_(distribute_tensor(src.to(dst.dtype), dst.device_mesh, dst.placements))
    else:
        dst.copy_(src.to(dtype=dst.dtype, device=dst.device))


LOAD_HINT = "build the architecture of the file (geodino info FILE shows it) or choose another checkpoint"


def check_fits(
    own: Mapping[str, Tensor],
    state: Mapping[str, Tensor],
    what: str = "model",
    source: str | Path = "<state_dict>",
    hint: str = LOAD_HINT,
) -> None:
    """`load_strict`'s check alone: raise its one line unless `state` fits `own` (a module's state_dict) key for key
    and shape for shape. Only names and shapes are read, so `own` may be meta tensors (a model not yet allocated)."""
    problem, _ = strict_mismatch(own, state)
    if problem:
        raise CheckpointError(f"{source} does not fit the {what} ({problem}); {incomplete_hint(own, state)}{hint}")


def load_strict(
    module: nn.Module,
    state: Mapping[str, Tensor],
    what: str = "model",
    source: str | Path = "<state_dict>",
    hint: str = LOAD_HINT,
) -> nn.Module:
    """Load `state` into `module` key for key and shape for shape, or raise one line (`check_fits`):
    `{source} does not fit the {what} ({mismatch}); {hint}`.

    A module on the meta device gets the tensors assigned (cast to its floating dtype), so a large model is never
    allocated twice; a sharded (FSDP2 DTensor) module gets each full tensor distributed into its shards.
    """
    own = module.state_dict()
    check_fits(own, state, what, source, hint)
    if any(t.is_meta for t in own.values()):
        fixed = {k: (v.to(own[k].dtype) if v.is_floating_point() else v).contiguous() for k, v in state.items()}
        module.load_state_dict(fixed, strict=True, assign=True)
        return module
    with torch.no_grad():
        for k, v in own.items():
            _copy_into(v, state[k])
    return module
