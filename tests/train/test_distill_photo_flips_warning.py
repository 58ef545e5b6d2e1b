"""Distillation's run start warns, as pretraining's does (d309f2c), when images/tar sources with the web sensor (or
none) get the overhead default of vertical flips and 90-degree rotations because `crops.vflips` / `crops.rot90` were
left unset. Before, only pretraining said so: a photo distillation got the overhead flips silently. It is said once
on rank 0 when teacher, students and data passed the start's checks (a refused start stays one line), not when the
config is only read, and not for the shipped distillation configs."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from geodino.config import load_config, shipped_configs
from geodino.train.distill import DistillConfig
from tests.train.test_distill import TEACHER

PHOTOS = """\
output_dir: {out}
teacher: {{spec: "{teacher}", head_warmup_steps: 2}}
students: [{{name: tiny, arch: vit_tiny, drop_path_rate: 0.0, overrides: {{depth: 1, n_storage_tokens: 1}}}}]
dino: {{head_n_prototypes: 64, head_hidden_dim: 32, head_bottleneck_dim: 16}}
ibot: {{head_n_prototypes: 64, head_hidden_dim: 32, head_bottleneck_dim: 16}}
data:
  sources:
    - {{name: holiday, type: images, paths: [{images}], sensor: imagenet}}
crops: {{global_size: 32, local_size: 16, n_local: 2}}
train: {{max_steps: 2, global_batch_size: 4, num_workers: 0, device: cpu, progress_bar: false}}
"""


class _Reached(Exception):
    """Raised where the run writes its start files: every check of the start has run."""


def start_warnings(cfg: DistillConfig, monkeypatch) -> list[str]:
    """The flip warnings `geodino distill`'s start gives up to writing config.yaml (teacher, students, data read)."""
    from geodino.train.distill import run_setup

    def stop(*_a, **_k):
        raise _Reached

    monkeypatch.setattr(run_setup, "write_start_files", stop)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(_Reached):
            run_setup.setup(cfg)
    return [str(w.message) for w in caught if "vflips" in str(w.message) or "rot90" in str(w.message)]


@pytest.fixture
def photos_yaml(tmp_path: Path, images: Path) -> Path:
    path = tmp_path / "photos.yaml"
    path.write_text(PHOTOS.format(out=tmp_path / "run", teacher=TEACHER, images=images))
    return path


def test_a_hand_written_photo_distill_config_is_warned_once_at_the_run_start(photos_yaml, monkeypatch):
    with warnings.catch_warnings(record=True) as at_load:
        warnings.simplefilter("always")
        cfg = load_config(DistillConfig, photos_yaml)  # reading the config says nothing
    assert not [w for w in at_load if "vflips" in str(w.message)]
    said = start_warnings(cfg, monkeypatch)
    assert len(said) == 1
    line = said[0]
    assert "\n" not in line and "holiday" in line
    assert "crops.vflips and crops.rot90 are not set" in line
    assert "set crops.vflips=false crops.rot90=false" in line


@pytest.mark.parametrize(
    "overrides",
    [["crops.vflips=false", "crops.rot90=false"], ["crops.vflips=true", "crops.rot90=true"]],
)
def test_no_warning_when_the_keys_are_set(photos_yaml, monkeypatch, overrides):
    assert start_warnings(load_config(DistillConfig, photos_yaml, overrides), monkeypatch) == []


def test_only_the_key_left_unset_is_named(photos_yaml, monkeypatch):
    (line,) = start_warnings(load_config(DistillConfig, photos_yaml, ["crops.vflips=false"]), monkeypatch)
    assert "set crops.rot90=false" in line and "crops.vflips" not in line


def test_shipped_distill_configs_do_not_warn():
    from geodino.data.config import warn_photo_flips

    names = shipped_configs(DistillConfig)
    assert "small_vit_tiny_half" in names  # images + imagenet (EuroSAT chips), with the keys set
    for name in names:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert warn_photo_flips(load_config(DistillConfig, name)) is None, name
        assert not [w for w in caught if "vflips" in str(w.message)], name


def test_small_vit_tiny_half_without_its_crops_keys_would_warn(tmp_path: Path):
    """What the check says of the shipped images + imagenet config with its flips keys taken out: the keys matter."""
    from geodino.config import find_config
    from geodino.data.config import warn_photo_flips

    text = find_config("small_vit_tiny_half", DistillConfig).read_text()
    kept = [ln for ln in text.splitlines() if ln.strip().split(":")[0] not in ("flips", "vflips", "rot90")]
    path = tmp_path / "half.yaml"
    path.write_text("\n".join(kept) + "\n")
    with pytest.warns(UserWarning, match="crops.vflips and crops.rot90 are not set"):
        assert warn_photo_flips(load_config(DistillConfig, path)) is not None
