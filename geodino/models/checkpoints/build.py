"""Building a backbone from weights: the strict load with a hint on what to do when a file does not fit
(`check_fits`, `load_weights`), the model a state_dict belongs to (`build_from_state`) and the one call from a
file to a model, bands adapted (`load_model`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from geodino.errors import CheckpointError
from geodino.models.checkpoints.bands import weights_to_bands
from geodino.models.checkpoints.files import BackboneWeights, incomplete_hint, load_strict, strict_mismatch
from geodino.models.checkpoints.infer import infer_config
from geodino.models.checkpoints.reading import read_backbone_weights

if TYPE_CHECKING:
    from geodino.models.vit import DinoVisionTransformer


def _fit_hint(model: nn.Module, state: Mapping[str, Tensor], own_config: bool = False) -> str:
    """What to do when `state` does not fit `model`: adapt the bands when only the patch embedding differs; a
    model built from the file's own config can only mismatch an inconsistent (incomplete or damaged) file."""
    own = model.state_dict()
    if own_config:
        return (
            "its keys do not make up one ViT (geodino reads the architecture from the file itself), so the file is "
            "incomplete or damaged: re-export or re-download it"
        )
    _, shapes = strict_mismatch(own, state)
    if shapes and set(own) == set(state) and all(k == "patch_embed.proj.weight" for k, _, _ in shapes):
        _, a, b = shapes[0]
        return (
            f"the file has {a.shape[1]} input bands and the model {b.shape[1]}: adapt the patch embedding to your "
            "bands (load_backbone(spec, bands=[names]) or spec '?bands=B02,B03,...', "
            "geodino.models.checkpoints.adapt_patch_embed)"
        )
    return (
        f"{incomplete_hint(own, state)}build the architecture of the file (geodino info FILE shows it) or choose "
        "another checkpoint"
    )


def check_fits(model: nn.Module, state: Mapping[str, Tensor], source: str | Path, *, own_config: bool = False) -> None:
    """Raise one CheckpointError line naming the mismatching keys and shapes (and suggesting band adaptation);
    `own_config`: the model was built from the file's own (recorded or inferred) architecture."""
    problem, _ = strict_mismatch(model.state_dict(), state)
    if problem:
        hint = _fit_hint(model, state, own_config)
        raise CheckpointError(f"checkpoint {source} does not fit the model ({problem}); {hint}")


def load_weights(
    model: nn.Module, state: Mapping[str, Tensor], source: str | Path = "<state_dict>", *, own_config: bool = False
) -> nn.Module:
    """`load_strict` into a backbone, with the band-adaptation hint when only the bands differ."""
    check_fits(model, state, source, own_config=own_config)
    return load_strict(model, state, "model", f"checkpoint {source}")


def build_from_state(
    state: Mapping[str, Tensor],
    config: Mapping[str, Any] | None = None,
    *,
    source: str | Path = "<state_dict>",
    device: str | torch.device = "cpu",
    **overrides: Any,
) -> DinoVisionTransformer:
    """Build the model `state` belongs to (config from the file, else inferred) and load it strictly."""
    from geodino.models import build_model

    cfg = dict(infer_config(state, source))
    if config:
        # the file's own kwargs win for settings that leave no trace in the weights (RoPE augmentation ...)
        cfg.update({k: v for k, v in config.items() if k in cfg})
    # the weights decide what they decide
    cfg["in_chans"] = int(state["patch_embed.proj.weight"].shape[1])
    cfg.update(overrides)
    arch = cfg.pop("arch", None)
    model = build_model(arch, device="meta", **cfg)
    load_weights(model, state, source, own_config=not overrides)
    if device is not None and str(device) != "cpu":
        model = model.to(device)
    model.config["arch"] = arch
    return model


def load_model(
    path: str | Path | BackboneWeights,
    *,
    bands: Sequence[str] | None = None,
    src_bands: Sequence[str] | None = None,
    fill: str = "mean",
    which: str | None = None,
    device: str | torch.device = "cpu",
    sensor: Any = None,
    subset: str = "copy",
    **overrides: Any,
) -> DinoVisionTransformer:
    """A DinoVisionTransformer from any supported file or HF folder, architecture inferred.

    With `bands` (names), the patch embedding is adapted from the file's bands (`src_bands`, default R, G, B
    for 3-band files) when they differ; see `adapt_patch_embed`. `sensor` names the sensor `bands` are named
    after (Landsat 7 SR_B1..SR_B7 and Landsat 8 number their bands differently). `subset`: the rule for a subset
    of the file's bands ("copy": the trained kernels unscaled; "rescale": scaled by C_src / C_dst, the rule before).
    `path` may be the `BackboneWeights` `read_backbone_weights` gave (the file is then not read again).
    """
    weights = path if isinstance(path, BackboneWeights) else read_backbone_weights(path, which=which)
    state = weights.state
    if bands is not None:
        state = weights_to_bands(weights, bands, src_bands=src_bands, sensor=sensor, fill=fill, subset=subset)
    return build_from_state(state, weights.config, source=weights.source, device=device, **overrides)
