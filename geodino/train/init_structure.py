"""The architecture of an init source: the build kwargs that decide its keys and shapes (`STRUCTURE_KEYS`), the
architecture and head sizes that rebuild it (`init_architecture`, for `ssl.student.arch: from_init`), and the one
line naming what differs from what a config builds and the keys to set (`architecture_error`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from geodino.errors import CheckpointError
from geodino.train.init_source import InitSource

# backbone build kwargs that decide which keys and shapes its state_dict has (what an init source must match)
STRUCTURE_KEYS = ("arch", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "ffn_layer", "ffn_hidden_dim",
                  "n_storage_tokens", "qkv_bias", "proj_bias", "ffn_bias", "mask_k_bias", "norm_layer",
                  "untie_cls_and_patch_norms", "untie_global_and_local_cls_norm")  # fmt: skip
# the pretrain config key of each build kwarg (any other one is an ssl.student.overrides entry)
STUDENT_KEYS = {"arch": "ssl.student.arch", "patch_size": "ssl.student.patch_size", "in_chans": "ssl.student.in_chans"}
FROM_INIT = "from_init"  # ssl.student.arch value: take the architecture (and head sizes) from init_from


def init_architecture(src: InitSource) -> tuple[str, int, int, dict[str, Any], dict[str, dict[str, Any]]]:
    """(arch, patch_size, in_chans, build overrides, head sizes) that rebuild `src`'s teacher backbone exactly, for
    `ssl.student.arch: from_init`: the build kwargs the file records, else those its shapes imply (`infer_config`);
    per head ({} without) its `head_*` sizes and `head_last_layer` (normalized: weight_g all 1); drop path: config's."""
    from geodino.models.archs import ARCHS
    from geodino.models.checkpoints import infer_config

    config = dict(src.backbone_config or infer_config(src.teacher, src.path))
    arch = config.pop("arch", None)
    arch = arch if arch in ARCHS else "vit_small"  # a base whose every structural default is overridden below
    patch, chans = int(config.pop("patch_size")), int(config.pop("in_chans"))
    config.pop("drop_path_rate", None)
    heads: dict[str, dict[str, Any]] = {}
    for name, state in src.heads.items():
        last, g = state.get("last_layer.weight", state.get("last_layer.weight_v")), state.get("last_layer.weight_g")
        mlp = sorted(k for k in state if k.startswith("mlp.") and k.endswith(".weight"))
        if last is None or not mlp:
            continue
        heads[name] = {
            "head_n_prototypes": int(last.shape[0]),
            "head_bottleneck_dim": int(last.shape[1]),
            "head_hidden_dim": int(state[mlp[0]].shape[0]) if len(mlp) > 1 else int(last.shape[1]),
            "head_nlayers": len(mlp),
            "head_last_layer": "linear" if g is None else "normalized" if bool((g == 1).all()) else "weight_norm",
        }
    return arch, patch, chans, config, heads


def architecture_differences(
    recorded: dict[str, Any] | None, built: dict[str, Any] | None
) -> list[tuple[str, Any, Any]]:
    """(build kwarg, value recorded in the file, value this config builds) for each structural field that differs;
    [] when either side records nothing (then a file that does not fit may just be incomplete)."""
    if not recorded or not built:
        return []
    return [
        (k, recorded[k], built[k]) for k in STRUCTURE_KEYS if k in recorded and k in built and recorded[k] != built[k]
    ]


def _yaml_value(v: Any) -> str:
    """`v` as written in a dotted `key=value` override."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def architecture_error(
    label: str, path: Path, diff: list[tuple[str, Any, Any]], key_of: Callable[[str], str] | None = None
) -> CheckpointError:
    """One line naming what `path` was trained with, what this config builds, and the keys to set: `key_of(kwarg)`
    names a build kwarg's config key (default: pretrain's `ssl.student.*`)."""
    pretraining = key_of is None
    key_of = key_of or (lambda k: STUDENT_KEYS.get(k, f"ssl.student.overrides.{k}"))
    old = ", ".join(f"{k}={a!r}" for k, a, _ in diff)
    new = ", ".join(f"{k}={b!r}" for k, _, b in diff)
    keys = ", ".join(f"{key_of(k)}={_yaml_value(a)}" for k, a, _ in diff)
    whole = f"ssl.student.arch={FROM_INIT} to build the file's architecture, or " if pretraining else ""
    return CheckpointError(
        f"{label} {path} was trained with {old} but this config builds {new}; set {keys} ({whole}init from a "
        "matching run)"
    )
