"""What a run folder's warmed-up `teacher.heads.pth` was made with, so that a re-run reuses it only when it asked
for the same heads.

A run killed after the heads warm-up but before its first checkpoint, re-run with other head settings, reloaded
the old file: its students got the old prototype count while config.yaml said the new one. The file now records
the heads' sizes, the warm-up's settings, `train.seed` and a hash of the data and crops config (`warmup_record`);
a re-run whose settings differ warms up again and replaces it (`stale_heads`, said in one line). A heads file the
user names (`teacher.heads`) is never replaced: a head size that differs from the config is refused
(`check_given_heads`), and one that records another teacher fingerprint is said in one line (`warn_heads_teacher`).
`spec_file` finds the checkpoint file behind a teacher spec with `?options`, whose heads `find_heads` takes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodino.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from geodino.models.heads import DINOHead

log = logging.getLogger("geodino.distill")

__all__ = [
    "agree_on_found",
    "check_given_heads",
    "save_warmed_heads",
    "spec_file",
    "stale_heads",
    "warmup_record",
    "warn_heads_teacher",
]

HEAD_SECTIONS = ("dino", "ibot")
HEAD_SIZES = ("head_n_prototypes", "head_hidden_dim", "head_bottleneck_dim", "head_nlayers")
RECORD_KEYS = ("head_sizes", "warmup_settings", "seed", "data_hash")


def _data_hash(cfg: Any) -> str:
    """A hash of the config of what the warm-up read (`data` and `crops`)."""
    from geodino.config import to_dict

    text = json.dumps({"data": to_dict(cfg.data), "crops": to_dict(cfg.crops)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def warmup_record(cfg: Any) -> dict[str, Any]:
    """The heads metadata a warm-up saves beside the teacher's fingerprint: head sizes (`dino.head_*`,
    `ibot.head_*`), warm-up settings (`teacher.head_warmup_*`), `train.seed` and the data hash."""
    t = cfg.teacher
    sizes = {f"{s}.{k}": int(getattr(getattr(cfg, s), k)) for s in HEAD_SECTIONS for k in HEAD_SIZES}
    settings = {
        "teacher.head_warmup_steps": int(t.head_warmup_steps),
        "teacher.head_warmup_lr": float(t.head_warmup_lr),
        "teacher.head_warmup_teacher_temp": float(t.head_warmup_teacher_temp),
        "teacher.head_warmup_momentum": [float(m) for m in t.head_warmup_momentum],
    }
    return {"head_sizes": sizes, "warmup_settings": settings, "seed": int(cfg.train.seed), "data_hash": _data_hash(cfg)}


def _differences(saved: dict[str, Any], now: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, saved value, this run's value) for every recorded setting that differs."""
    out: list[tuple[str, Any, Any]] = []
    for group in ("head_sizes", "warmup_settings"):
        was, want = dict(saved.get(group) or {}), now[group]
        out += [(k, was.get(k), v) for k, v in want.items() if was.get(k) != v]
    if saved.get("seed") != now["seed"]:
        out.append(("train.seed", saved.get("seed"), now["seed"]))
    if saved.get("data_hash") != now["data_hash"]:
        out.append(("data/crops config (hash)", saved.get("data_hash"), now["data_hash"]))
    return out


def _say(message: str) -> None:
    """One line on rank 0 (every rank decides the same; one says it)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0:
        log.warning(message)


def stale_heads(path: Path, meta: dict[str, Any], cfg: Any) -> bool:
    """Whether this run's own warmed-up heads at `path` (metadata `meta`) were made with other head sizes, warm-up
    settings, seed or data than `cfg` asks: the run then warms up again and replaces them (said in one line). A file
    without the record (an older geodino) is reused as before, said once."""
    if not all(k in meta for k in RECORD_KEYS):
        _say(f"{path} records no head sizes or warm-up settings (an older geodino): reused without checking them")
        return False
    diff = _differences(meta, warmup_record(cfg))
    if not diff:
        return False
    what = ", ".join(f"{k} {a} -> {b}" for k, a, b in diff)
    _say(f"{path} was warmed up with other settings ({what}): warming up fresh heads and replacing it")
    return True


def check_given_heads(path: str, dino: DINOHead, ibot: DINOHead, cfg: Any) -> None:
    """Refuse heads the user named (`teacher.heads`) whose sizes differ from `dino.head_*`/`ibot.head_*` (one line
    naming the key and both values), so that config.yaml says what the students learn from."""
    for section, head in zip(HEAD_SECTIONS, (dino, ibot), strict=True):
        c = getattr(cfg, section)
        sizes = [
            ("head_n_prototypes", int(head.out_dim)),
            ("head_bottleneck_dim", int(head.bottleneck_dim)),
            ("head_nlayers", int(head.nlayers)),
        ]
        if int(head.nlayers) > 1:  # one layer has no hidden size
            sizes.insert(1, ("head_hidden_dim", int(head.hidden_dim)))
        for key, got in sizes:
            if int(getattr(c, key)) != got:
                raise ConfigError(
                    f"{section}.{key}={getattr(c, key)} but the heads in teacher.heads={path} have {got}; set "
                    f"{section}.{key}={got} (the heads' sizes) or pass heads of this size"
                )


def spec_file(spec: str) -> tuple[Path | None, str]:
    """(the checkpoint file a teacher spec names, its `?which=`): `FILE?sensor=...` names FILE (its heads were
    missed, and a fresh warm-up ran, when the whole spec text was taken for the path); None for arch:/timm: specs
    and for a path that is not a file."""
    from geodino.backbones.spec import parse_spec

    try:
        kind, target, options = parse_spec(spec)
    except ConfigError:
        return None, ""
    path = Path(target).expanduser()
    if kind != "path" or not path.is_file():
        return None, ""
    return path, str(options.get("which", "") or "")


def warn_heads_teacher(heads: str, fingerprint: str, spec: str) -> None:
    """One line when `teacher.heads` records a teacher fingerprint other than the loaded teacher's. Not refused: a
    converted copy of the same weights (another file, format or dtype) has another fingerprint."""

    path = Path(heads).expanduser()
    if not path.is_file() or path.suffix == ".safetensors":
        return  # a sharded checkpoint folder or a safetensors file records no warm-up fingerprint
    from geodino.models.checkpoints.files import read_file

    try:  # the one safe reader, memory-mapped: a multi-GB teacher_checkpoint.pth is not read again for one string
        obj = read_file(path)[0]
    except (CheckpointError, OSError, RuntimeError, ValueError, KeyError, EOFError, AttributeError):
        return
    meta = obj if isinstance(obj, dict) else {}
    was = str(meta.get("teacher_fingerprint") or "")
    if was and fingerprint and was != fingerprint:
        log.warning(
            "teacher.heads=%s was warmed up on another teacher (%r, fingerprint %s) than teacher.spec=%s "
            "(fingerprint %s); its prototypes may not fit this teacher's features: use heads made with this teacher "
            "unless it is a converted copy of the same weights",
            heads,
            meta.get("teacher_spec"),
            was[:16],
            spec,
            fingerprint[:16],
        )


def save_warmed_heads(saved: Path, dino: Any, ibot: Any, meta: dict[str, Any]) -> None:
    """Write the warmed-up heads and their record to `saved`; a full disk or a read-only folder is one line (naming
    the file and what to do), not a traceback."""
    from geodino.errors import InputError
    from geodino.train import teacher_heads as th

    try:
        th.save_heads_file(saved, dino, ibot, meta)
    except OSError as exc:
        raise InputError(
            f"cannot write the warmed-up teacher heads {saved} ({exc.strerror or exc}); free space in {saved.parent} "
            "(or make it writable) and run the same command again"
        ) from exc


def agree_on_found(found: Any, resuming: bool) -> Any:
    """`find_heads`'s answer (`FoundHeads`) made the same on every rank: the heads warm-up runs collectives, so
    ranks that found heads and ranks that warm up waited for each other (rank 0 in the barrier after the heads, the
    others in the warm-up's broadcast). With an output_dir on each node's own disk only rank 0 writes
    `teacher.heads.pth`: a re-run of a run stopped before its first checkpoint found it on rank 0 alone. When only the
    run folder's own heads differ and the run starts at step 0, every rank warms up fresh heads (said once); else
    (a resume, or heads of the teacher files on some ranks only) every rank refuses in the same line."""
    import torch.distributed as dist

    from geodino.train.distill.build import FoundHeads

    views: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(views, (found.dino is not None, found.saved, found.source))
    have = [r for r, (got, _, _) in enumerate(views) if got]
    if not have or len(have) == len(views):
        return found
    lack = ", ".join(str(r) for r, (got, _, _) in enumerate(views) if not got)
    first = views[have[0]][2]
    if not resuming and all(views[r][1] for r in have):
        _say(
            f"{first} is on rank(s) {', '.join(map(str, have))} but not on rank(s) {lack} (output_dir is not one "
            "folder shared by every process): every rank warms up fresh heads"
        )
        return FoundHeads()
    raise ConfigError(
        f"the teacher's heads ({first}) were found on rank(s) {', '.join(map(str, have))} but not on rank(s) {lack}; "
        "every process must read the same teacher files and output_dir: share output_dir between the nodes, or "
        "copy the file to the same path on each node"
    )
