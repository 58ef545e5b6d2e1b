"""`embed --resume` loses at most one tile row: progress is recorded after every written row range, not only per
block, and a block resumed part-way gives the same bytes as an uninterrupted run (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.embed import embed_raster, sweep
from geodino.embed.pipeline import partial_blocks, work_dir_for
from tests.embed.conftest import random_image, read_all, write_tif


def killed_run(monkeypatch, src, bb, out, after_rows: int, **opts) -> None:
    """`embed_raster` killed (KeyboardInterrupt at the sweep's fault seam) once `after_rows` tile rows are written."""

    def kill(n_blocks: int, n_rows: int) -> None:
        if n_rows >= after_rows:
            raise KeyboardInterrupt(f"simulated kill after {n_rows} tile rows")

    monkeypatch.setattr(sweep, "_after_row", kill)
    with pytest.raises(KeyboardInterrupt):
        embed_raster(src, bb, out, **opts)
    monkeypatch.undo()


@pytest.mark.parametrize(
    "opts",
    [
        # 4-px patches: 40x24 output cells in one block (the case: a kill used to lose the whole block)
        dict(tile=32, overlap=8, chunk=16, block_rows=48),  # tile rows every 6 cells, 4 tiles each
        dict(tile=48, overlap=16, chunk=16, block_rows=48, dtype="int8"),
    ],
)
@pytest.mark.parametrize("kill_after_rows", [2, 4])
def test_kill_inside_a_block_resumes_there_and_is_identical(tmp_path, conv_bb, monkeypatch, opts, kill_after_rows):
    src = write_tif(tmp_path / "in.tif", random_image(160, 96))
    opts = {**opts, "progress": False}
    ref = read_all(embed_raster(src, conv_bb, tmp_path / "ref.tif", **opts))[0]
    out = tmp_path / "o.tif"

    killed_run(monkeypatch, src, conv_bb, out, kill_after_rows, **opts)
    work = work_dir_for(out)
    partial = partial_blocks(work)
    assert partial, "the killed run recorded no row progress"
    ((index, (rows, _)),) = partial.items()
    assert rows > 0 and not (work / "done" / f"{index}.done").exists()

    inferred = []
    real = sweep.Sweeper._infer
    monkeypatch.setattr(sweep.Sweeper, "_infer", lambda self, tiles: inferred.append(len(tiles)) or real(self, tiles))
    embed_raster(src, conv_bb, out, resume=True, **opts)
    np.testing.assert_array_equal(read_all(out)[0], ref)
    assert not work.exists()
    monkeypatch.setattr(sweep.Sweeper, "_infer", real)
    full = []
    monkeypatch.setattr(sweep.Sweeper, "_infer", lambda self, tiles: full.append(len(tiles)) or real(self, tiles))
    embed_raster(src, conv_bb, tmp_path / "again.tif", **opts)
    # the tile rows flushed before the kill are not computed again, except the last one (its overlap feeds the
    # rows below): at most one tile row of work is lost
    assert sum(inferred) <= sum(full) - (kill_after_rows - 1) * full[0]


def test_a_refused_overwrite_keeps_the_resumable_work(tmp_path, conv_bb, monkeypatch):
    """`--overwrite` removed a killed run's work folder before the input was checked: a run then refused (here a
    nodata value the input's dtype cannot hold) had destroyed the work a --resume would finish. The work folder is
    removed only once the run's checks passed; the resume still finishes it, identical to an uninterrupted run."""
    from geodino.errors import InputError

    src = write_tif(tmp_path / "in.tif", random_image(160, 96))
    opts = dict(tile=32, overlap=8, chunk=16, block_rows=48, progress=False)
    ref = read_all(embed_raster(src, conv_bb, tmp_path / "ref.tif", **opts))[0]
    out = tmp_path / "o.tif"

    killed_run(monkeypatch, src, conv_bb, out, 2, **opts)
    work = work_dir_for(out)
    assert partial_blocks(work)
    with pytest.raises(InputError, match="out of range"):
        embed_raster(src, conv_bb, out, overwrite=True, nodata=300, **opts)  # uint8 input
    assert partial_blocks(work), "the refused --overwrite run removed the resumable work"
    embed_raster(src, conv_bb, out, resume=True, **opts)
    np.testing.assert_array_equal(read_all(out)[0], ref)
