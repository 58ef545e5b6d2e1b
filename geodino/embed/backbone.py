"""What the feature-raster pipeline needs from a backbone, and how a spec string becomes one.

The pipeline is written against the small `Backbone` protocol below (the shape of
`geodino.backbones.FrozenBackbone`), so any object with these attributes works: a loaded checkpoint, a timm
baseline, or a toy model in tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from geodino.errors import ConfigError, plural

if TYPE_CHECKING:
    import torch

    from geodino.embed.config import EmbedConfig
    from geodino.embed.plan import Plan


@runtime_checkable
class Backbone(Protocol):
    """A frozen feature extractor: patch maps from normalised images."""

    patch_size: int
    embed_dim: int
    in_chans: int
    n_blocks: int

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise reflectance-scaled input [B,C,H,W] with the backbone's mean/std."""
        ...

    def features(self, x: torch.Tensor, layers: Any = "last", norm: bool = True) -> tuple[list, list]:
        """(patch maps [B,D,H/p,W/p] per requested layer, class tokens [B,D] per layer)."""
        ...


EMBED_LAYERS_USAGE = (
    "use last, four_last, four_even, four_even_official or block indices like 4,8,11 (negative count from the end: "
    "-2,-1 are the last two blocks)"
)


EMPTY_INDEX = "has an empty block index (a comma at an end, or two in a row)"


def layers_flag(text: str) -> str:
    """The `type` of embed's `--layers`: the text as given, once `parse_layers` reads it; what it refuses is an
    argparse error (one line naming --layers and the value, exit 2)."""
    import argparse

    try:
        parse_layers(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace(f"layers={text!r}", f"{text!r}", 1)) from None
    return text


def parse_layers(layers: Any) -> Any:
    """embed's layer choice as `FrozenBackbone.features` takes it: a layer set name (`last`, `four_last`,
    `four_even`, `four_even_official`, any case), or block indices as a list or as text `"4,8,11"` (negative count
    from the end). Both always name blocks: text `"2"` is block 2, as documented.

    A bare int is refused in one line: `features` (and DINOv3's `get_intermediate_layers(n=2)`) read it as the
    last 2 blocks, embed's index syntax as block 2, and either reading would surprise the other's users."""
    from geodino.backbones.layers import LAYER_SETS, _as_index, block_list

    if isinstance(layers, str):
        s = layers.strip()
        if s.lower() in LAYER_SETS:
            return s.lower()
        parts = s.replace(" ", "").split(",")
        try:
            idx = [int(v) for v in parts if v != ""]
        except ValueError:
            raise ConfigError(f"layers={layers!r} is not valid; {EMBED_LAYERS_USAGE}") from None
        if not idx:
            raise ConfigError(f"layers={layers!r} names no block; {EMBED_LAYERS_USAGE}")
        if "" in parts:  # `-2,` (a block left out?) was read as [-2] without a word
            raise ConfigError(f"layers={layers!r} {EMPTY_INDEX}; {EMBED_LAYERS_USAGE}")
        return idx
    n = _as_index(layers)
    if n is not None:
        block = f"pass [{n}] (text {str(n)!r}) for block {n}"
        if not 1 <= n <= 64:
            raise ConfigError(f"layers={n} (an int) is not taken: {block}; {EMBED_LAYERS_USAGE}")
        last = ", ".join(str(i) for i in range(-n, 0))
        raise ConfigError(
            f"layers={n} (an int) is ambiguous: features() reads it as the last {plural(n, 'block')}, embed as "
            f"block {n}; {block}, or [{last}] (text {last.replace(' ', '')!r}) for the last {plural(n, 'block')}"
        )
    if isinstance(layers, bool) or type(layers).__name__ == "bool_":
        raise ConfigError(f"layers={layers!r} is not valid; {EMBED_LAYERS_USAGE}")
    idx = block_list(layers, EMBED_LAYERS_USAGE)
    if not idx:
        raise ConfigError(f"layers={layers!r} names no block; {EMBED_LAYERS_USAGE}")
    return idx


def __getattr__(name: str) -> Any:
    """`layer_indices` lives in `geodino.backbones` (one definition, with bounds checks); kept importable here."""
    if name == "layer_indices":
        from geodino.backbones import layer_indices

        return layer_indices
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve_backbone(backbone: Any, *, device: str = "cpu", amp: bool = False) -> Any:
    """A backbone object from a spec string (through `geodino.backbones.load_backbone`) or the object itself.

    The data's sensor (`--sensor`) only sets the DN scale; the backbone's own normalisation is the one its export
    records (or comes with its spec, e.g. `export.pth?sensor=sentinel2_l2a`), as CONTRIBUTING prescribes. `amp`
    turns on the backbone's bf16 autocast (FrozenBackbone otherwise autocasts on CUDA only).
    """
    if not isinstance(backbone, str):
        missing = [
            a for a in ("patch_size", "embed_dim", "in_chans", "normalize", "features") if not hasattr(backbone, a)
        ]
        if missing:
            raise ConfigError(
                f"backbone object {type(backbone).__name__} lacks {missing}; pass a spec or a FrozenBackbone"
            )
        return backbone
    if not backbone:
        raise ConfigError(
            "no backbone given; pass --backbone SPEC (backbone= in Python): a checkpoint, arch:vit_small, timm:NAME ..."
        )
    from geodino.backbones import load_backbone

    return load_backbone(backbone, device=device, amp=True if amp else None)


def weights_device(bb: Any, device: str) -> str:
    """The device of a backbone object's weights, or `device` for an object without any (or a spec)."""
    from geodino.backbones.device import held_device

    held = held_device(bb)
    return device if held is None else str(held)


def inference_device(bb: Any, device: str, workers: int = 1) -> str:
    """Where a run infers, given the backbone object `bb` and the run's `device` (a spec string is loaded there).

    An object with weights on another device type than `device` runs on its weights' device (an object loaded on a
    GPU and passed to `embed_raster` with the default device='cpu' runs on that GPU). Within one type, a `device`
    without an index follows the weights (cuda:1), and one with an index wins (a rank's cuda:LOCAL_RANK, set by
    `rank_device`; the pipeline moves the object there). With `workers` > 1 only the type is taken and no index: each
    worker takes its own GPU from it (`rank_device`) and moves the backbone there (`place_backbone`); a parent's
    "cuda:0" would have put every worker on GPU 0. An object without weights runs on `device`."""
    import torch

    held, want = torch.device(weights_device(bb, device)), torch.device(device)
    if held == want:
        return device
    if want.type != held.type:
        return held.type if workers > 1 else str(held)
    if workers > 1 or want.index is not None:
        return device
    return str(held)


def inference_path(bb: Any, cfg: EmbedConfig, plan: Plan, *, say: Any = None) -> dict[str, str]:
    """Put a geodino ViT on the fast inference path (`geodino.inference`; GEODINO_FAST=0 turns it off) and return
    what the feature raster records: {"inference_path", "inference_dtype"}; `say` (a `Console.say`) is told which
    path it took. Other backbones stay as given. A workers run's parent prepares nothing (each worker prepares its
    own where it runs, and a compile warm-up here would be paid for nothing): it records the path they take."""
    if getattr(bb, "kind", None) != "geodino" or not hasattr(bb, "model"):
        return {"inference_path": "eager", "inference_dtype": "bfloat16" if cfg.amp else "float32"}
    from geodino.inference import cpu_bf16_hint, image_equivalents, path_of, plan_path, prepare_embed, runs_on

    mode = "bfloat16" if cfg.amp else "auto"
    if cfg.workers > 1:
        path = plan_path(bb, mode=mode, n_images=plan.n_tiles, image_size=(cfg.tile, cfg.tile))
        meta = {"inference_path": path.name, "inference_dtype": runs_on(bb, path)}
    else:
        meta = prepare_embed(
            bb,
            tile=cfg.tile,
            batch_size=plan.batch_fill(cfg.batch_size),  # the batch the sweep fills, so the one compiled
            n_tiles=plan.n_tiles,
            layers=parse_layers(cfg.layers),
            mode=mode,
            norm=cfg.norm,
        )
        path = path_of(bb)
    if say is not None:  # an uncompiled path says why (job size, no compiler), so a user knows what to change
        note = f"; {path.reason}" if path.enabled and not path.compile and path.reason else ""
        say(f"geodino: inference path {meta['inference_path']} ({meta['inference_dtype']}{note})")
        hint = cpu_bf16_hint(bb, meta["inference_dtype"], image_equivalents(plan.n_tiles, cfg.tile, cfg.tile))
        if hint:
            say(hint)
    return meta


def describe_backbone(bb: Any) -> dict[str, Any]:
    """Spec and fingerprint for metadata (objects without them are named by their class); for a backbone read from a
    weights file also that file's own sha256 (`model_file_sha256`), which `sha256sum` checks where the fingerprint,
    a hash over it and the options, cannot."""
    described = {
        "model_spec": str(getattr(bb, "spec", type(bb).__name__)),
        "model_fingerprint": str(getattr(bb, "fingerprint", "")),
        "patch_size": int(bb.patch_size),
        "embed_dim": int(bb.embed_dim),
        "n_blocks": int(getattr(bb, "n_blocks", 0)),
        "normalization": str(getattr(bb, "norm_source", "") or "the backbone object's own"),
    }
    weights = getattr(bb, "weights_sha256", None)
    if isinstance(weights, str) and weights:
        described["model_file_sha256"] = weights
    return described
