"""Python entry points given the wrong kind of argument (API audit): one GeoDinoError line, or the argument taken as
meant (a comma string of bands, a numeric string, one override string)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import geodino
from geodino.config import load_config
from geodino.data.config import DataConfig, SourceConfig
from geodino.errors import ConfigError, GeoDinoError
from tests.helpers import write_tif


@pytest.fixture
def raster(tmp_path):
    """A 3-band 16-bit GeoTIFF whose bands carry no names (b1, b2, b3)."""
    rng = np.random.default_rng(0)
    return write_tif(tmp_path / "s2.tif", rng.integers(100, 5000, (3, 64, 64)).astype(np.uint16))


# ---------------------------------------------------------------------------------------------- 1, 2, 8: data stats
def test_a_source_type_typo_is_one_line_with_the_closest_type(raster):
    from geodino.data.stats import compute_stats

    with pytest.raises(ConfigError, match=r"^type='rastr'; use raster, cube, .* \(did you mean 'raster'\?\)$"):
        compute_stats(str(raster), type="rastr", progress=False)
    cfg = DataConfig(sources=[SourceConfig(type="imags", paths=["x/"])])
    with pytest.raises(ConfigError, match=r"data.sources\[0\].type='imags'; .* \(did you mean 'images'\?\)"):
        cfg.validate()


def test_bands_as_a_comma_string_are_split_and_band_numbers_are_refused(raster):
    from geodino.data.stats import compute_stats

    sensor, _ = compute_stats(str(raster), bands="b1, b3", progress=False, samples=4)
    assert sensor.bands == ("b1", "b3")
    with pytest.raises(ConfigError, match=r"bands are band names here .* so write bands=\['b1', 'b2'\]$"):
        compute_stats(str(raster), bands=[1, 2], progress=False, samples=4)
    cfg = DataConfig(sources=[SourceConfig(paths=["x/"], bands="red,nir")])  # type: ignore[arg-type]
    cfg.validate()
    assert cfg.sources[0].bands == ["red", "nir"]


def test_numeric_strings_are_taken_and_other_text_is_one_line(raster):
    from geodino.config import whole_number
    from geodino.data.stats import compute_stats

    _, prov = compute_stats(str(raster), samples="4", progress=False)
    assert prov["seed"] == 0 and prov["tiles"] >= 1
    with pytest.raises(ConfigError, match=r"^samples must be a whole number \(e.g. samples=256\), got 'four'$"):
        compute_stats(str(raster), samples="four", progress=False)
    assert whole_number("12", "steps") == 12 and whole_number(3.0, "steps") == 3
    for bad in (2.5, True, None, "1e", [1]):
        with pytest.raises(ConfigError, match="steps must be a whole number"):
            whole_number(bad, "steps")


# ---------------------------------------------------------------------------------------------- 5: load_config
@dataclasses.dataclass
class _Trainer:
    max_steps: int = 10


@dataclasses.dataclass
class _Schema:
    trainer: _Trainer = dataclasses.field(default_factory=_Trainer)
    name: str = "x"


def test_load_config_takes_one_override_string():
    assert load_config(_Schema, None, "trainer.max_steps=3").trainer.max_steps == 3
    assert load_config(_Schema, None, ("trainer.max_steps=4", "name=y")).name == "y"
    with pytest.raises(ConfigError, match=r"^overrides must be a list of key=value strings .* got dict$"):
        load_config(_Schema, None, {"trainer.max_steps": 3})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- 6, 8: pretrain
@pytest.fixture
def captured_pretrain(monkeypatch, tmp_path):
    """geodino.pretrain up to its config: the training itself is replaced by a stand-in that keeps the config."""
    import geodino.train.api as api
    import geodino.train.pretrain as pretrain_lib

    seen = []
    monkeypatch.setattr(pretrain_lib, "pretrain", lambda cfg: seen.append(cfg) or tmp_path / "run")
    monkeypatch.setattr(api, "_has_heads", lambda path: False)  # an official release: backbone only
    chips = tmp_path / "chips"
    chips.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(chips / "a.png")
    return chips, seen


def test_pretrain_steps_text_and_a_one_step_run_from_a_release(captured_pretrain, tmp_path):
    chips, seen = captured_pretrain
    with pytest.raises(ConfigError, match=r"^steps must be a whole number \(e.g. steps=100\), got 'abc'$"):
        geodino.pretrain(chips, tmp_path / "r0", steps="abc")  # type: ignore[arg-type]
    geodino.pretrain(chips, tmp_path / "r1", steps="3")  # type: ignore[arg-type]
    assert seen[-1].trainer.max_steps == 3
    # one step leaves no room for the heads' warm-up (it must end before the run does): none is set
    geodino.pretrain(chips, tmp_path / "r2", steps=1, init_from=tmp_path / "release.pth")
    assert seen[-1].trainer.max_steps == 1 and seen[-1].head_warmup_steps == 0
    geodino.pretrain(chips, tmp_path / "r3", steps=20, init_from=tmp_path / "release.pth")
    assert seen[-1].head_warmup_steps == 2
    geodino.pretrain(chips, tmp_path / "r4", init_from=tmp_path / "release.pth")
    assert seen[-1].head_warmup_steps == 0.1


# ---------------------------------------------------------------------------------------------- 7: exports
def test_training_error_is_exported_and_import_stays_free_of_torch():
    from geodino.errors import TrainingError

    assert "TrainingError" in geodino.__all__ and geodino.TrainingError is TrainingError
    assert issubclass(TrainingError, GeoDinoError)
    code = "import sys, geodino; from geodino import *; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
