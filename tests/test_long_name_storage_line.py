"""The storage line of a write refused under a long name names the output asked for: its temporary's STEM is cut
to fit 255 bytes (`io_temps.temp_name`), and reading the output's name back from the temporary's gave a file that
does not exist (`aaaa...~c056f00f.tif`)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from geodino.io import atomic_path
from geodino.io_temps import temp_target
from geodino.storage_errors import storage_error


@pytest.mark.parametrize("name", ["short.tif", "b" * 200 + ".tif", "é" * 120 + ".tif"])
def test_a_full_disk_under_a_long_name_names_the_output(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    with pytest.raises(OSError) as refused:
        with atomic_path(out) as tmp:
            assert temp_target(tmp) == out
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))  # as open() of the temporary says it
    line = storage_error(refused.value)
    assert line is not None and f" writing {out} (No space left on device)" in line
    assert list(tmp_path.iterdir()) == []
