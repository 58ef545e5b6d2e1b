"""A write refused by the storage whose error names no file (a plain `write()`, torch.save's, safetensors') is
raised by `atomic_path` as one naming the output, so the CLI's one line says which file could not be written."""

from __future__ import annotations

import errno
import os

import pytest

from geodino.io import atomic_path
from geodino.storage_errors import storage_error


def test_a_plain_write_refused_names_the_output(tmp_path):
    out = tmp_path / "x.json"
    with pytest.raises(OSError) as got, atomic_path(out) as tmp:
        tmp.write_text("{")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as f.write() raises it: no file name
    assert f"writing {out} (No space" in storage_error(got.value)
    assert not out.exists() and list(tmp_path.iterdir()) == []
