"""geodino_vit's input checks, without TerraTorch: a KeyError from inside the factory was swallowed by TerraTorch's
BACKBONE_REGISTRY (`suppress(KeyError)`: "Could not instantiate model geodino_vit not from any source") and is now
one ConfigError line; `sensor=` without band names was silently unused and is refused; a band listed twice (or two
of the file's bands under one name) was accepted and is refused; the checkpoint file is read once, not twice."""

from __future__ import annotations

from contextlib import suppress

import pytest
import torch

import geodino.models.checkpoints as checkpoints
from geodino.errors import ConfigError
from geodino.integrations.terratorch import datamodule_stats, geodino_vit
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from tests.helpers import EXPORT_RECORD


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> str:
    """A 4-band export (BLUE, GREEN, RED, NIR_NARROW, sensor demo4) of a 1-block ViT."""
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1)
    path = tmp_path_factory.mktemp("tt") / "bb.safetensors"
    return str(save_backbone(model, path, normalization=EXPORT_RECORD))


def _build_like_terratorch(**kwargs):
    """TerraTorch's MultiSourceRegistry.build without a prefix: a source's KeyError means 'not here, try the next'."""
    for source in ({"geodino_vit": geodino_vit},):
        with suppress(KeyError):
            return source["geodino_vit"](**kwargs)
    raise KeyError("Could not instantiate model geodino_vit not from any source.")


def test_a_key_error_inside_the_factory_is_one_config_error_line(export, monkeypatch):
    def broken(path, which=None):
        raise KeyError("weight_map")

    monkeypatch.setattr(checkpoints, "read_backbone_weights", broken)
    with pytest.raises(ConfigError, match=r"^geodino_vit could not be built: KeyError 'weight_map'") as caught:
        _build_like_terratorch(ckpt_path=export)
    assert isinstance(caught.value.__cause__, KeyError)  # the traceback stays chained
    assert geodino_vit.__name__ == "geodino_vit"  # TerraTorch's registry keys the constructor by its name


def test_a_sharded_hf_index_without_weight_map_is_a_checkpoint_error(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "dinov3_vit"}')
    (tmp_path / "model.safetensors.index.json").write_text('{"metadata": {}}')
    with pytest.raises(checkpoints.CheckpointError, match=r"model.safetensors.index.json has no readable weight_map"):
        geodino_vit(ckpt_path=str(tmp_path))


def test_sensor_without_band_names_is_refused(export):
    with pytest.raises(ConfigError, match=r"sensor='landsat8' but no band names: .* add backbone_bands"):
        geodino_vit(ckpt_path=export, sensor="landsat8")
    with pytest.raises(ConfigError, match=r"sensor='landsat8' but no band names"):
        geodino_vit(ckpt_path=export, sensor="landsat8", bands=4)  # a count names no band either
    with pytest.raises(ConfigError, match=r"datamodule_stats got sensor='landsat8' but no band names"):
        datamodule_stats(export, sensor="landsat8")
    # with names it is used: landsat8's SR_B5 is its NIR, the export's NIR_NARROW kernel
    bb = geodino_vit(ckpt_path=export, sensor="landsat8", bands=["SR_B5"])
    assert bb.in_chans == 1
    assert datamodule_stats(export, bands=["SR_B5"], sensor="landsat8") == datamodule_stats(
        export, bands=["NIR_NARROW"]
    )


def test_sensor_of_a_random_model_is_named_as_unused():
    with pytest.warns(UserWarning, match=r"ignores sensor without ckpt_path"):
        bb = geodino_vit(arch="vit_tiny", bands=["SR_B4", "SR_B5"], sensor="landsat8")
    assert bb.in_chans == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bands": ["RED", "RED", "GREEN"]}, r"bands=\[RED, RED, GREEN\], which lists RED twice"),
        ({"bands": "red,nir,Red"}, r"bands='red,nir,Red' cannot be used: list each band once; 'Red' is listed twice"),
        ({"pretrained_bands": ["a", "b", "a", "c"]}, r"pretrained_bands=\[a, b, a, c\], which lists a twice"),
    ],
)
def test_a_band_listed_twice_is_refused(export, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        geodino_vit(ckpt_path=export, **kwargs)


def test_pretrained_bands_naming_one_band_twice_are_refused(tmp_path):
    """B02 and BLUE are one Sentinel-2 band: which of the file's two kernels is blue's is unknown."""
    torch.manual_seed(0)
    plain = tmp_path / "plain.pth"
    torch.save(build_model("vit_tiny", patch_size=8, in_chans=4, depth=1).state_dict(), plain)
    with pytest.raises(ConfigError, match=r"bands of checkpoint .* name one band twice \(B02 and BLUE\)"):
        geodino_vit(ckpt_path=str(plain), pretrained_bands=["B02", "BLUE", "B04", "B08"], bands=["B04"])


def test_the_checkpoint_is_read_once(export, tmp_path, monkeypatch):
    import safetensors

    opened: list[str] = []
    real_open, real_load = safetensors.safe_open, torch.load
    monkeypatch.setattr(safetensors, "safe_open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k))
    geodino_vit(ckpt_path=export, bands=["RED", "NIR_NARROW"])
    assert opened == [export]  # read for its band record and built from that read (it was opened twice)

    plain = tmp_path / "plain.pth"
    torch.manual_seed(0)
    torch.save(build_model("vit_tiny", patch_size=8, in_chans=3, depth=1).state_dict(), plain)
    loads: list[str] = []
    monkeypatch.setattr(torch, "load", lambda f, *a, **k: loads.append(str(f)) or real_load(f, *a, **k))
    bb = geodino_vit(ckpt_path=str(plain), bands=["B", "G", "R"])
    assert loads == [str(plain)] and bb.in_chans == 3
