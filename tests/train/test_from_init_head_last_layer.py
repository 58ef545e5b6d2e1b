"""`ssl.student.arch=from_init` takes the prototype layer's parametrisation from the file's heads, as their sizes.

The small recipes (demo, small_vit_tiny) use `head_last_layer: normalized` (keys `last_layer.weight_g/_v`); DINOv3
heads, distilled students and the default recipes use a plain `last_layer.weight`. from_init adopted the sizes only,
so `init_from` a distilled student (`?which=NAME`) or any linear-head export into the small recipe was refused with
"does not fit the student dino_head ... set ssl.student.arch=from_init", which was already set."""

from __future__ import annotations

import torch

from geodino.config import load_config
from geodino.models import build_model
from geodino.models.heads import DINOHead
from geodino.train.init_from import init_architecture, read_init_source
from geodino.train.pretrain import PretrainConfig
from geodino.train.pretrain_init import adopt_init_architecture


def _export(tmp_path, last_layer: str, g: float | None = None):
    """A tiny geodino export (X.pth + X.heads.pth) whose DINO and iBOT heads have `last_layer`."""
    kw = {"arch": "vit_tiny", "patch_size": 8, "in_chans": 3, "embed_dim": 32, "depth": 1, "num_heads": 2}
    torch.manual_seed(0)
    model = build_model(**kw)
    path = tmp_path / "src.pth"
    torch.save(model.state_dict(), path)
    heads = {}
    for name in ("dino_head", "ibot_head"):
        head = DINOHead(32, 16, hidden_dim=24, bottleneck_dim=8, nlayers=2, last_layer=last_layer)
        if g is not None:
            torch.nn.init.constant_(head.last_layer.weight_g, g)
        heads[name] = head.state_dict()
    torch.save({**heads, "backbone": kw, "step": 3}, tmp_path / "src.heads.pth")
    return path


def test_from_init_adopts_a_linear_prototype_layer_into_the_normalized_small_recipe(tmp_path) -> None:
    src = _export(tmp_path, "linear")
    cfg = load_config(
        PretrainConfig,
        "configs/pretrain/demo.yaml",
        [f"init_from={src}", "ssl.student.arch=from_init", "data.sources=[{type: synthetic, tile_size: 32}]"],
    )
    assert cfg.ssl.dino.head_last_layer == "normalized"  # the recipe's own choice, before from_init
    adopt_init_architecture(cfg)
    assert (cfg.ssl.dino.head_last_layer, cfg.ssl.ibot.head_last_layer) == ("linear", "linear")
    assert (cfg.ssl.dino.head_n_prototypes, cfg.ssl.dino.head_hidden_dim, cfg.ssl.dino.head_bottleneck_dim) == (
        16,
        24,
        8,
    )
    # the heads built from the adopted config take the file's head weights strictly
    head = DINOHead(32, 16, hidden_dim=24, bottleneck_dim=8, nlayers=2, last_layer=cfg.ssl.dino.head_last_layer)
    head.load_state_dict(torch.load(tmp_path / "src.heads.pth", weights_only=False)["dino_head"], strict=True)


def test_from_init_tells_normalized_from_weight_norm_by_the_frozen_g(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    normalized = init_architecture(read_init_source(_export(tmp_path / "a", "normalized")))[4]
    trained_g = init_architecture(read_init_source(_export(tmp_path / "b", "weight_norm", g=1.3)))[4]
    assert {h["head_last_layer"] for h in normalized.values()} == {"normalized"}
    assert {h["head_last_layer"] for h in trained_g.values()} == {"weight_norm"}
