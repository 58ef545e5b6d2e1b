"""The lines that quote a library's error quote its whole text (`errors.one_line`), not its first line: torch's
rendezvous errors and GDAL's open errors put the reason on a later line, which the first line alone dropped (a join
that failed said only "The client socket has timed out after 1800000ms while trying to connect to"; an unreadable
raster only "a.tif:")."""

from __future__ import annotations

import datetime

import pytest
import torch.distributed as dist

from geodino.errors import InputError, TrainingError
from geodino.train import join_group
from geodino.train.api import source_of


def test_a_failed_join_says_the_reason_on_the_second_line(monkeypatch) -> None:
    def rendezvous(url: str, timeout: datetime.timedelta):
        raise RuntimeError("The client socket has timed out while trying to connect to\n  (127.0.0.1, 29500).")

    monkeypatch.setattr(dist, "rendezvous", rendezvous)
    monkeypatch.setenv(join_group.JOIN_TIMEOUT_ENV, "5")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(TrainingError) as caught:
        join_group.join_group(lambda: None, "train.device")  # type: ignore[arg-type,return-value]
    line = str(caught.value)
    assert "trying to connect to; (127.0.0.1, 29500)." in line, line
    assert "\n" not in line and "within 5 s" in line


def test_a_blank_first_line_gives_the_type_name_or_the_later_reason(monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    wait = datetime.timedelta(seconds=3)
    assert "(TimeoutError)" in join_group._join_failed(TimeoutError(), wait)
    assert "(store closed: rank 1 gone)" in join_group._join_failed(RuntimeError("\nstore closed:\nrank 1 gone"), wait)


def test_an_unreadable_raster_says_the_reason_on_the_second_line(monkeypatch, tmp_path) -> None:
    import rasterio
    from rasterio.errors import RasterioIOError

    (tmp_path / "a.tif").write_bytes(b"not a tiff")

    def refuse(path, *args, **kwargs):
        raise RasterioIOError(f"{path}:\nTIFFReadDirectory: truncated directory")

    monkeypatch.setattr(rasterio, "open", refuse)
    with pytest.raises(InputError) as caught:
        source_of(tmp_path)
    line = str(caught.value)
    assert "a.tif: TIFFReadDirectory: truncated directory" in line, line
    assert "\n" not in line
