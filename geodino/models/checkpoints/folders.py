"""What a folder that is not a model folder stands for, so that its refusal names the file to pass instead.

`load_backbone`, `geodino convert`, TerraTorch's `geodino_vit` and `datamodule_stats` read a folder only as an HF or
timm model folder (`config.json`). A geodino run folder (`runs/NAME`, what `pretrain`/`distill` write), its
`checkpoints/` folder, a sharded training checkpoint (`meta.pt`) or a folder of exports was refused with "has no
config.json; pass an HF DINOv3ViTModel folder or a file", which named no file.
"""

from __future__ import annotations

import json
from pathlib import Path

BACKBONE_SUFFIXES = (".pth", ".safetensors", ".pt", ".ckpt", ".bin")


def backbone_files(folder: Path) -> list[Path]:
    """The backbone-like files directly in `folder` (sidecars and temporaries left out), sorted by name."""
    try:
        found = [p for p in folder.iterdir() if p.is_file() and p.suffix in BACKBONE_SUFFIXES]
    except OSError:
        return []
    return sorted((p for p in found if not p.name.endswith(".heads.pth") and not p.name.startswith(".")), key=str)


def _checkpoint_in(folder: Path) -> Path | None:
    """`last.ckpt` of a run's checkpoint folder, else its newest step checkpoint."""
    last = folder / "last.ckpt"
    if last.exists():
        return last
    steps = sorted(folder.glob("step_*.ckpt"))
    return steps[-1] if steps else None


def not_a_model_folder(path: Path) -> str:
    """One line for a folder without `config.json`: what it is, and the file in it to pass."""
    head = f"checkpoint folder {path} has no config.json (not an HF or timm model folder)"
    if (path / "meta.pt").is_file():
        return (
            f"{head}: it is a sharded training checkpoint (meta.pt); export its backbone first, `geodino export "
            f"{path} OUT.pth`, and pass OUT.pth"
        )
    ckpts = path / "checkpoints"
    if ckpts.is_dir() or (path / "config.yaml").is_file():  # a run folder (pretrain, distill)
        # pretraining's export/teacher.pth; distillation's NAME/NAME.pth, one per student
        exported = sorted((path / "export").glob("*.pth")) if (path / "export").is_dir() else []
        exported = [p for p in exported if not p.name.endswith(".heads.pth")]
        exported += sorted(p / f"{p.name}.pth" for p in path.iterdir() if (p / f"{p.name}.pth").is_file())
        ckpt = _checkpoint_in(ckpts) if ckpts.is_dir() else None
        if exported:
            more = f" (or its checkpoint {ckpt})" if ckpt else ""
            return f"{head}: it is a geodino run folder; pass its export {exported[0]}{more}"
        if ckpt:
            return f"{head}: it is a geodino run folder; pass its checkpoint {ckpt} (or `geodino export` it first)"
        return f"{head}: it is a geodino run folder with no checkpoint or export yet; let the run save one"
    ckpt = _checkpoint_in(path)
    if ckpt is not None:
        return f"{head}: it is a run's checkpoint folder; pass its checkpoint {ckpt}"
    files = backbone_files(path)
    if files:
        if len(files) == 1:
            return f"{head}; it holds {files[0].name}: pass that file, {files[0]}"
        names = ", ".join(p.name for p in files[:5]) + (", ..." if len(files) > 5 else "")
        return f"{head}; it holds {names}: pass one of those files (e.g. {files[0]})"
    return f"{head}; pass a backbone file (.pth, .safetensors, .ckpt) or an HF/timm model folder"


def run_checkpoint_hint(path: Path) -> str:
    """For a folder read as a sharded checkpoint (`geodino export FOLDER`) that has no meta.pt: the run's
    checkpoint to pass when it is a run folder or its `checkpoints/` folder, else ""."""
    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    ckpt = _checkpoint_in(folder)
    run = folder.parent if folder.name == "checkpoints" else folder
    students = _distill_exports(run)
    if students:  # export reads pretraining checkpoints; a distillation run wrote its students' files itself
        names = ", ".join(str(p) for p in students[:4]) + (", ..." if len(students) > 4 else "")
        step = ckpt if ckpt is not None else run / "checkpoints" / "step_N.ckpt"
        return (
            f" ({run} is a distillation run: its students are exported already as {names}; from a checkpoint: "
            f"geodino convert {step} OUT.pth --which {students[0].stem})"
        )
    return f" (a run's checkpoints are files: pass {ckpt})" if ckpt is not None else ""


def _distill_exports(run: Path) -> list[Path]:
    """The student exports (`RUN/<name>/<name>.pth`) of a distillation run folder (its config.yaml lists
    `students:`), else []."""
    import re

    try:
        text = (run / "config.yaml").read_text()
    except (OSError, UnicodeDecodeError):
        return []
    if not re.search(r"^students:", text, re.MULTILINE):
        return []
    return sorted(p for p in run.glob("*/*.pth") if p.stem == p.parent.name)


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # an HF or timm model folder's (unsharded) weights


def model_folder_of(path: Path) -> Path:
    """The HF or timm model folder whose weights file `path` is (`hf_backbone/model.safetensors`), else `path`. The
    weights alone load with the settings the shapes cannot show guessed (LayerNorm eps, RoPE base, the recorded
    normalisation all lost: tokens ~3e-3 off and mean 0 / std 1), while the folder's config.json has them."""
    if path.name not in WEIGHT_FILES or not path.is_file():
        return path
    try:
        cfg = json.loads((path.parent / "config.json").read_text())
    except (OSError, ValueError):
        return path
    from geodino.models.checkpoints.timm import is_timm_folder

    if isinstance(cfg, dict) and (cfg.get("model_type") == "dinov3_vit" or is_timm_folder(path.parent)):
        return path.parent
    return path


# prefixes other tools put before a model name, which geodino reads as part of a path (`local-dir:` is timm's
# local folder, `hf-hub:` timm's hub name, `hf:` a common shorthand): what to pass instead
_FOREIGN_PREFIXES = {
    "local-dir": "timm's prefix for a local folder; pass the folder itself ({rest})",
    "hf-hub": "timm's prefix for a Hugging Face hub model; geodino reads local files only: download it "
    "(hf download {rest} --local-dir DIR) and pass DIR",
    "hf": "not a geodino spec; geodino reads local files only: download the model (hf download {rest} --local-dir "
    "DIR) and pass DIR",
}


def foreign_prefix(text: str) -> str:
    """What to pass instead of `local-dir:PATH`, `hf-hub:NAME` or `hf:NAME` ("" for any other name)."""
    head, sep, rest = text.partition(":")
    return f"{head}: is " + _FOREIGN_PREFIXES[head].format(rest=rest) if sep and head in _FOREIGN_PREFIXES else ""
