"""A full disk inside an `embed --workers` process: the parent says the worker's storage line (the path, "free
space", --resume) with its exit code 1, not the generic "N embedding workers failed ...", and keeps the partial
output for --resume."""

from __future__ import annotations

import errno
import os

import pytest

from geodino.embed import embed_raster
from geodino.embed.pipeline import work_dir_for
from geodino.errors import GeoDinoError
from tests.embed.conftest import random_image, write_tif
from tests.embed.toy_backbones import ConvBackbone


def _full_disk(self, r0, c0, data):
    path = f"{getattr(self.array, 'store_path', 'store.zarr/embedding')}/0.0.0"
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


class FullDiskConv(ConvBackbone):
    """Unpickled in a spawned worker, it makes that worker's store writes fail as on a full disk (the parent,
    which pickles it, keeps its own writer)."""

    def __setstate__(self, state):
        super().__setstate__(state)
        from geodino.embed import writers

        writers.ZarrBlockWriter.write = _full_disk


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_full_disk_in_a_worker_is_the_storage_line_with_its_exit_code(tmp_path, capfd):
    src = write_tif(tmp_path / "in.tif", random_image(64, 64))
    out = tmp_path / "o.tif"
    with pytest.raises(GeoDinoError) as err:
        embed_raster(src, FullDiskConv(), out, workers=2, tile=32, overlap=8, chunk=4, progress=False)
    msg = str(err.value)
    assert "the storage refused a write writing " in msg and "No space left on device" in msg, msg
    assert "free space" in msg and "--resume" in msg and "\n" not in msg
    assert "embedding worker" not in msg and msg.startswith("the storage refused"), msg
    assert err.value.exit_code == 1  # the storage's fault, as in one process (StorageError), not the input's (2)
    assert not out.exists() and work_dir_for(out).exists()  # kept: --resume finishes it once space is freed
    assert "Traceback" not in capfd.readouterr().err  # no worker traceback printed above the line
