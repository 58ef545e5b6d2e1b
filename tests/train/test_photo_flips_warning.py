"""Web photos get the overhead crops' vertical flips and 90-degree rotations by default (`crops.vflips`, `crops.rot90`
default true); the official recipe flips horizontally only. The sources cannot tell photos from overhead chips (the
shipped EuroSAT recipe small_vit_tiny is also `type: images`, `sensor: imagenet`), so `load_config` records which
keys a config's file and overrides set, and the run's start warns once only when an images/tar source with the web
sensor (or none) meets vflips/rot90 left unset. Before, nothing was said."""

from __future__ import annotations

import warnings

import pytest

from geodino.config import load_config, shipped_configs
from geodino.train.config import PretrainConfig

PHOTOS = """\
name: photos
data:
  sources:
    - {name: holiday, type: images, paths: [pics/], sensor: imagenet}
    - {type: tar, paths: [shards/]}
    - {name: s2, type: raster, paths: [scenes/], sensor: sentinel2_l2a}
trainer: {max_steps: 125000}  # the official schedules' length (their warm-ups exceed the default 1000 steps)
"""
RUN = "trainer.max_steps=125000"

# (flips, vflips, rot90) of every shipped pretraining config as HEAD before this change loaded them
SHIPPED_FLIPS = {
    "demo": (True, True, True),
    "demo_gram": (True, True, True),
    "s2_vits16": (True, True, True),
    "sat_vits16": (True, True, True),
    "small_vit_tiny": (True, True, True),
    "vit7b16": (False, True, False),
    "vit7b16_gram": (False, True, False),
    "vit7b16_highres": (False, True, False),
    "vit7b16_pretrain": (False, True, False),
    "vitl16": (True, False, False),
    "vitl16_gram": (True, False, False),
    "vitl16_highres": (True, False, False),
    "vitl16_pretrain": (True, False, False),
    "vits16_gram": (True, True, True),
    "vits16_highres": (True, True, True),
    "vits16_pretrain": (True, True, True),
    "web_vits16": (True, False, False),
}


def start_warnings(cfg: PretrainConfig) -> list[str]:
    """The flip warnings the run's start gives: its config checks, then, once they and the data passed, the check
    itself (that a real start gives it exactly once: test_api_photos_one_line)."""
    from geodino.data.config import warn_photo_flips
    from geodino.train.pretrain import _check_schedules

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _check_schedules(cfg)
        warn_photo_flips(cfg)
    return [str(w.message) for w in caught if "vflips" in str(w.message) or "rot90" in str(w.message)]


@pytest.fixture
def photos_yaml(tmp_path):
    path = tmp_path / "photos.yaml"
    path.write_text(PHOTOS)
    return path


def test_a_hand_written_photo_config_is_warned_once_at_the_run_start(photos_yaml):
    with warnings.catch_warnings(record=True) as at_load:
        warnings.simplefilter("always")
        cfg = load_config(PretrainConfig, photos_yaml)  # reading it (data curate does) says nothing
    assert not [w for w in at_load if "vflips" in str(w.message)]
    said = start_warnings(cfg)
    assert len(said) == 1
    line = said[0]
    assert "\n" not in line
    assert "holiday, source1" in line and "s2" not in line  # the photo-like sources, not the raster
    assert "crops.vflips and crops.rot90 are not set" in line
    assert "set crops.vflips=false crops.rot90=false" in line


@pytest.mark.parametrize(
    "overrides",
    [
        ["crops.vflips=false", "crops.rot90=false"],
        ["crops.vflips=true", "crops.rot90=true"],  # overhead chips, chosen: the values are the defaults
        ["crops={vflips: false, rot90: false}"],
        ["crops.flips=false", "crops.rot90=false"],  # no flips at all: vflips has nothing to add
    ],
)
def test_no_warning_when_the_keys_are_set(photos_yaml, overrides):
    assert start_warnings(load_config(PretrainConfig, photos_yaml, overrides)) == []


def test_keys_set_in_the_file_or_its_base_count(tmp_path, photos_yaml):
    base = tmp_path / "base.yaml"
    base.write_text("crops: {vflips: false}\n")
    child = tmp_path / "child.yaml"
    child.write_text("_base_: base.yaml\n" + PHOTOS + "crops: {rot90: true}\n")
    assert start_warnings(load_config(PretrainConfig, child)) == []


def test_only_the_key_left_unset_is_named(photos_yaml):
    (line,) = start_warnings(load_config(PretrainConfig, photos_yaml, ["crops.vflips=false"]))
    assert "crops.rot90 is not set" in line and "set crops.rot90=false" in line and "crops.vflips" not in line


@pytest.mark.parametrize(
    "source",
    [
        "{type: raster, paths: [scenes/]}",
        "{type: images, paths: [chips/], sensor: sentinel2_l2a}",
        "{type: tar, paths: [shards/], sensor: maxar}",
    ],
)
def test_no_warning_for_overhead_sources(source):
    cfg = load_config(PretrainConfig, None, [f"data.sources=[{source}]", RUN])
    assert start_warnings(cfg) == []


def test_a_source_without_sensor_or_with_an_alias_of_the_web_sensor_warns():
    for source in ("{type: images, paths: [a/]}", "{type: tar, paths: [a/], sensor: rgb}"):
        assert len(start_warnings(load_config(PretrainConfig, None, [f"data.sources=[{source}]", RUN]))) == 1


def test_a_config_built_in_python_is_not_guessed_at():
    from geodino.config_record import set_keys
    from geodino.data.config import DataConfig, SourceConfig

    cfg = PretrainConfig(data=DataConfig(sources=[SourceConfig(type="images", paths=["a/"])]))
    cfg.trainer.max_steps = 125000
    assert set_keys(cfg) is None
    assert start_warnings(cfg) == []


def test_load_config_records_the_keys_its_file_and_overrides_set(photos_yaml):
    from geodino.config_record import set_keys

    cfg = load_config(PretrainConfig, photos_yaml, ["crops.rot90=false", "data.sources[0].sensor=rgb"])
    assert set_keys(cfg) == {"name", "data.sources", "trainer.max_steps", "crops.rot90", "data.sources.0.sensor"}
    from geodino.config import to_dict

    assert "_geodino" not in str(to_dict(cfg))  # the record is not part of the saved config


def test_shipped_pretrain_configs_load_unchanged_and_do_not_warn():
    names = shipped_configs(PretrainConfig)
    assert sorted(names) == sorted(SHIPPED_FLIPS)
    for name in names:
        cfg = load_config(PretrainConfig, name)
        assert (cfg.crops.flips, cfg.crops.vflips, cfg.crops.rot90) == SHIPPED_FLIPS[name], name
        assert start_warnings(cfg) == [], name


def test_a_real_start_warns_once_after_its_checks(tmp_path, monkeypatch):
    """`pretrain` itself: the config validated twice (load, start), the data read, then one warning before the
    start files are written; a start refused by its checks (no pixels to read) says nothing but its error."""
    import numpy as np
    from PIL import Image

    from geodino.errors import GeoDinoError
    from geodino.train import pretrain as pretrain_lib

    photos = tmp_path / "jpegs"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(np.full((32, 32, 3), 60 * i, np.uint8)).save(photos / f"{i}.jpg")

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(pretrain_lib, "write_start_files", stop)
    source = f"data.sources=[{{type: images, paths: [{photos}]}}]"
    for data, want in ((source, 1), ("data.sources=[{type: images, paths: [" + str(tmp_path / "none") + "]}]", 0)):
        cfg = load_config(PretrainConfig, "demo", [data, f"output_dir={tmp_path / 'run'}"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(Stop if want else GeoDinoError):
                pretrain_lib.pretrain(cfg)
        said = [str(w.message) for w in caught if "crops.vflips and crops.rot90 are not set" in str(w.message)]
        assert len(said) == want, said
