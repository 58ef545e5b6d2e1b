"""Review follow-up of `geodino data curate`: with several sources each kept list is `curated_<name>.parquet`, and
the source's name went into the path as written: `s2/l2a` wrote `curated_s2/l2a.parquet` in a subfolder (which the
next run's stale-file clean-up never removes) and `up/../../x` wrote outside the output folder. The name's other
characters are now `_`; config.yaml points each source at its own list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from geodino import cli
from geodino.data.curate.report import list_files
from tests.data.test_curate import SPEC


def _images(folder: Path, seed: int) -> str:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return str(folder)


def test_source_names_become_plain_file_names_in_the_output_folder(tmp_path):
    names = ["s2/l2a", "up/../../x", "naip"]
    sources = [{"name": n, "type": "images", "paths": [_images(tmp_path / f"in{i}", i)]} for i, n in enumerate(names)]
    cfg = tmp_path / "pretrain.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"sources": sources}}))
    out = tmp_path / "a" / "b" / "cur"
    argv = ["data", "curate", "--config", str(cfg), "-b", SPEC, "-o", str(out), "--size", "9", "--clusters", "2"]
    assert cli.main([*argv, "--dedup", "1.01", "--no-progress"]) == 0
    lists = sorted(p.name for p in out.glob("curated*.parquet"))
    assert lists == ["curated_naip.parquet", "curated_s2_l2a.parquet", "curated_up_.._.._x.parquet"]
    # no list in a subfolder, none outside the output folder (the old code wrote a/b/x.parquet)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.parquet") if p.parent != out / "embeddings") == [
        Path("a/b/cur") / n for n in ["curated_naip.parquet", "curated_s2_l2a.parquet", "curated_up_.._.._x.parquet"]
    ] + [Path("a/b/cur/tiles.parquet")]
    written = yaml.safe_load((out / "config.yaml").read_text())["data"]["sources"]
    assert [s["name"] for s in written] == names
    assert [Path(s["paths"][0]).name for s in written] == [
        "curated_s2_l2a.parquet",
        "curated_up_.._.._x.parquet",
        "curated_naip.parquet",
    ]


def test_names_that_meet_get_a_number_and_one_source_keeps_curated_parquet():
    want = ["curated_a_b.parquet", "curated_a_b_2.parquet", "curated_a_b_3.parquet"]
    assert list_files(["a/b", "a b", "a_b"]) == want
    assert list_files(["any/name"]) == ["curated.parquet"]
