"""`geodino embed` bad flag values, its help text, the shipped embed defaults file and config-file errors: each a
one-line `geodino: error:` naming the flag (or file, line and column) and the value, exit 2, no traceback."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from geodino import cli
from geodino.config import load_config
from geodino.embed.config import EmbedConfig
from geodino.errors import ConfigError
from tests.embed.conftest import write_tif

SPEC = "arch:vit_tiny?depth=1&seed=0"
# a progress bar, as tqdm redraws it or as a line in a log (GEODINO_PROGRESS=lines, the default off a terminal)
TQDM = re.compile(r"\d+%\|.*\| *\d+/\d+ \[|: \d+/\d+ \S+ \(\d+\.\d %\), ")
DEFAULT_YAML = Path(__file__).parents[1] / "geodino" / "configs" / "embed" / "default.yaml"


@pytest.fixture
def scene(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    return write_tif(tmp_path / "scene.tif", (rng.random((3, 64, 64)) * 255).astype(np.uint8))


def error_line(capsys, *argv: str) -> str:
    """Run the CLI; check exit 2 and exactly one `geodino: error:` line (no traceback); return it."""
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in (x.split("\r")[-1] for x in err.splitlines()) if ln.strip() and not TQDM.search(ln)]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("geodino: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    "flag, value, expect",
    [
        ("--threads", "-2", "--threads -2"),  # was a RuntimeError traceback from torch.set_num_threads, exit 1
        ("--batch-size", "0", "--batch-size 0"),  # was "batch_size, workers and world_size must be >= 1"
        ("--workers", "0", "--workers 0"),
        ("--world-size", "0", "--world-size 0"),
        ("--scale", "-1", "--scale -1"),  # was accepted: every band's sign flipped
        ("--scale", "0", "--scale 0"),  # was accepted: every input read as 0
    ],
)
def test_bad_values_name_the_flag_and_value(capsys, scene, tmp_path, flag, value, expect):
    out = tmp_path / "out.tif"
    line = error_line(capsys, "embed", scene, "-b", SPEC, "--out", out, "--tile", "64", "--overlap", "0", flag, value)
    assert expect in line, line
    assert not out.exists()


def test_python_api_refuses_the_same_values():
    for options, name in (
        ({"threads": -1}, "threads"),
        ({"batch_size": 0}, "batch_size"),
        ({"workers": -3}, "workers"),
        ({"scale": -1e-4}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"scale": float("inf")}, "scale"),
    ):
        with pytest.raises(ConfigError, match=f"{name}="):
            EmbedConfig(**options).validate()
    ok = EmbedConfig(threads=0, scale="1e-4", batch_size="2")  # 0 threads: torch's default; text as the CLI reads
    ok.validate()
    assert (ok.threads, ok.scale, ok.batch_size) == (0, 1e-4, 2)


def test_embed_images_negative_threads_is_one_line(capsys, tmp_path):
    (tmp_path / "imgs").mkdir()
    line = error_line(
        capsys, "embed", "images", tmp_path / "imgs", "-b", SPEC, "--out", tmp_path / "f.parquet", "--threads", "-2"
    )
    assert "--threads -2" in line, line


def _embed_parser() -> argparse.ArgumentParser:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["embed"]


def test_every_embed_flag_has_help():
    bare = [a.option_strings or [a.dest] for a in _embed_parser()._actions if not a.help]
    assert bare == [], f"embed flags without help text: {bare}"


@pytest.mark.parametrize(
    "flag",
    ["--batch-size", "--layer-mode", "--dtype", "--allow-no-crs", "--overwrite", "--device", "--rank", "--no-progress"],
)
def test_flags_that_had_no_help_say_their_default(flag):
    action = next(a for a in _embed_parser()._actions if flag in a.option_strings)
    assert action.help and "default" in action.help, (flag, action.help)


def test_default_yaml_holds_every_embed_key_with_its_default():
    """The file says it holds every EmbedConfig key: same keys, same order, same defaults (it lacked 11 keys)."""
    data = yaml.safe_load(DEFAULT_YAML.read_text())
    fields = {f.name: f.default for f in dataclasses.fields(EmbedConfig)}
    assert list(data) == list(fields)
    assert data == fields
    cfg = load_config(EmbedConfig, DEFAULT_YAML)
    cfg.validate()
    assert cfg == EmbedConfig()


@pytest.mark.parametrize(
    "text, where, what",
    [
        ("tile: [1, 2\nbatch_size: 4\n", "line 2, column 11", "expected ',' or ']'"),
        ("tile: 256\n  batch_size: 4\n", "line 2, column 13", "mapping values are not allowed here"),
        ("tile: 256\ntile: 4\n", "line 2, column 1", "duplicate key tile"),
    ],
)
def test_broken_yaml_names_file_line_and_column(capsys, scene, tmp_path, text, where, what):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(EmbedConfig, bad)
    assert str(bad) in str(err.value) and where in str(err.value) and what in str(err.value), str(err.value)
    line = error_line(capsys, "embed", scene, "-b", SPEC, "--out", tmp_path / "o.tif", "--config", bad)
    assert where in line and what in line, line


def test_config_folder_is_called_a_folder(capsys, scene, tmp_path):
    folder = tmp_path / "adir"
    folder.mkdir()
    (folder / "mine.yaml").write_text("tile: 256\n")
    line = error_line(capsys, "embed", scene, "-b", SPEC, "--out", tmp_path / "o.tif", "--config", folder)
    assert "is a folder" in line and "not found" not in line and "mine.yaml" in line, line
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(EmbedConfig, folder)


@pytest.mark.parametrize(
    "override, expect",
    [
        ("band_scale=[0]", "band_scale=[0.0]: 0.0 is not a positive"),  # was accepted: every band read as 0
        ("band_scale=[-1e-4]", "is not a positive DN -> reflectance factor"),  # was accepted: bands negated
        ("gdal_cache_mb=-1", "gdal_cache_mb=-1 must be >= 0"),  # went to GDAL_CACHEMAX as a negative byte count
    ],
)
def test_band_scale_and_cache_out_of_range_are_one_line(capsys, scene, tmp_path, override, expect):
    out = tmp_path / "out.tif"
    line = error_line(capsys, "embed", scene, "-b", SPEC, "--out", out, "--tile", "64", "--overlap", "0", override)
    assert expect in line, line
    assert not out.exists()


def test_band_rule_values_in_python():
    for options in ({"band_scale": ["a"]}, {"band_scale": [True]}, {"band_scale": [1e-4], "band_offset": [np.nan]}):
        with pytest.raises(ConfigError, match="band_"):
            EmbedConfig(**options).validate()
    cfg = EmbedConfig(band_scale=["1e-4", np.float32(2.0)], band_offset=[-0.1, "0"])  # text read as numbers
    cfg.validate()
    assert cfg.band_scale == [1e-4, 2.0] and cfg.band_offset == [-0.1, 0.0]
