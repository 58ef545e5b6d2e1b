"""`data curate -o FOLDER` where FOLDER holds files under the names a curation writes but no curation: refused before
any work unless --overwrite, and another tool's report.json never makes files "stale". A report.json listing
`notes.txt` had curate delete it ("removed 2 files an earlier run wrote"), and a report.md or a pretraining run's
config.yaml was overwritten without a word."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from geodino import cli
from tests.data.test_curate import SPEC
from tests.test_bad_inputs import one_line_exit_2


def _chips(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_a_folder_of_other_work_is_refused_and_its_files_survive_overwrite(tmp_path, capsys):
    chips = _chips(tmp_path / "chips")
    out = tmp_path / "work"
    out.mkdir()
    (out / "report.json").write_text(json.dumps({"files": ["notes.txt"]}))
    (out / "notes.txt").write_text("mine")
    (out / "config.yaml").write_text("output_dir: runs/x\n")
    argv = ["data", "curate", chips, "-b", SPEC, "-o", out, "--size", "2", "--clusters", "2", "--dedup", "1.01"]
    one_line_exit_2(
        capsys,
        tmp_path,
        *argv,
        "--no-progress",
        expect=("--out", "holds config.yaml, report.json but no earlier curation", "--overwrite"),
    )
    assert cli.main([str(a) for a in argv] + ["--no-progress", "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"  # listed by the foreign report.json: not curate's to remove
    assert json.loads((out / "report.json").read_text())["stale_files_removed"] == []
    # the folder now holds a curation: a re-run needs no --overwrite, also with the embedding cache deleted
    for f in (out / "embeddings").iterdir():
        f.unlink()
    (out / "embeddings").rmdir()
    assert cli.main([str(a) for a in argv] + ["--no-progress"]) == 0
