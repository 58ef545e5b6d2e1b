"""Review follow-up of `geodino data curate`: an output folder inside the image folder it curates (`curate imgs -o
imgs/cur`) ran once, then its exemplars.png was an input tile of the next run, which refused the folder as holding
'other inputs (3 tiles ...; this run 4 tiles)' (and with --overwrite curated its own mosaic). It is now refused
before anything is written, in one line naming the folder; a glob of the top folder's images still runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from geodino import cli
from tests.data.test_curate import SPEC
from tests.test_bad_inputs import one_line_exit_2

RUN = ["-b", SPEC, "--size", "2", "--clusters", "1", "--no-progress"]


def _images(folder: Path) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_out_inside_the_image_folder_is_one_line_and_writes_nothing(tmp_path, capsys):
    imgs = _images(tmp_path / "imgs")
    for out in (imgs / "cur", imgs):
        said = (f"--out {out} (out_dir= in Python) is inside the image folder {imgs.resolve()}", "exemplars.png")
        line = one_line_exit_2(capsys, tmp_path, "data", "curate", imgs, "-o", out, *RUN, expect=said)
        assert "choose an --out folder outside it" in line
    assert sorted(p.name for p in imgs.iterdir()) == ["0.png", "1.png", "2.png"]


def test_out_beside_or_under_a_glob_still_runs_and_reruns(tmp_path, capsys):
    imgs = _images(tmp_path / "imgs")
    for _ in range(2):  # the re-run reuses the cache: the same 3 tiles
        assert cli.main(["data", "curate", str(imgs), "-o", str(tmp_path / "cur"), *RUN]) == 0, capsys.readouterr()
        assert _tiles_read(tmp_path / "cur") == ["0.png", "1.png", "2.png"]
    for _ in range(2):  # imgs/c/exemplars.png of the first run is not re-read by the second
        assert cli.main(["data", "curate", str(imgs / "*.png"), "-o", str(imgs / "c"), *RUN]) == 0
        assert _tiles_read(imgs / "c") == ["0.png", "1.png", "2.png"]


def _tiles_read(out: Path) -> list[str]:
    """The names of the images a curate run into `out` read (its tiles.parquet), checked against its report."""
    import json

    import pandas as pd

    names = sorted(Path(p).name for p in pd.read_parquet(out / "tiles.parquet")["path"])
    assert json.loads((out / "report.json").read_text())["tiles"] == len(names)
    return names
