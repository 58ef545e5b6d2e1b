"""Atomic outputs: nothing appears under the final name unless the write completed."""

from __future__ import annotations

import pytest

from geodino.errors import InputError
from geodino.io import atomic_path, check_writable, temp_name


def test_file_appears_only_on_success(tmp_path):
    target = tmp_path / "out.tif"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            assert tmp != target and tmp.parent == target.parent
            raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole" and list(tmp_path.iterdir()) == [target]


def test_folder_replaced_atomically(tmp_path):
    target = tmp_path / "store.zarr"
    target.mkdir()
    (target / "old").write_text("1")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.zarr"]


def test_refusals(tmp_path):
    target = tmp_path / "a.tif"
    target.write_text("x")
    # the flag, and the keyword a Python caller passes (it was only the flag)
    with pytest.raises(InputError, match=r"a.tif already exists; pass --overwrite \(overwrite=True in Python\)"):
        check_writable(target)
    assert check_writable(target, overwrite=True) == target
    with pytest.raises(InputError, match=r"already exists; pass --overwrite \(overwrite=True in Python\) to replace"):
        with atomic_path(target, overwrite=False):
            pass
    assert temp_name(tmp_path / "x.tar.gz").name.endswith(".tar.gz")


def test_json_text_writes_strict_json():
    """Metrics can be undefined (R² of constant heights is NaN); the files must still parse in strict readers."""
    import json

    import numpy as np

    from geodino.io import json_text

    text = json_text(
        {"R2": float("nan"), "MAE": np.float32(1.5), "rows": [{"v": float("inf")}, (np.float64("nan"), 2)]}
    )
    assert json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c))) == {
        "R2": None,
        "MAE": 1.5,
        "rows": [{"v": None}, [None, 2]],
    }


def test_a_vrt_stamp_changes_when_a_file_it_reads_is_rewritten(tmp_path):
    """Probe caches and curate embeddings keyed a VRT stack on the VRT file alone: a band file rewritten in place
    served stale features."""
    import os

    from geodino.io import content_stamp, vrt_sources

    (tmp_path / "b").mkdir()
    band = tmp_path / "b" / "red.tif"
    band.write_bytes(b"x" * 10)
    vrt = tmp_path / "stack.vrt"
    vrt.write_text(
        '<VRTDataset rasterXSize="1" rasterYSize="1"><VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
        '<SourceFilename relativeToVRT="1">b/red.tif</SourceFilename></SimpleSource></VRTRasterBand>'
        '<VRTRasterBand dataType="Byte" band="2"><SimpleSource><SourceFilename relativeToVRT="0">/vsicurl/http://x/y.tif'
        "</SourceFilename></SimpleSource></VRTRasterBand></VRTDataset>"
    )
    assert vrt_sources(vrt) == [str(tmp_path / "b" / "red.tif")]
    before = content_stamp(vrt)
    band.write_bytes(b"y" * 10)  # same size: only the mtime tells
    os.utime(band, ns=(band.stat().st_atime_ns, band.stat().st_mtime_ns + 10**9))
    assert content_stamp(vrt) != before
    (tmp_path / "plain.tif").write_bytes(b"z")
    assert content_stamp(tmp_path / "plain.tif").count("|") == 1  # other files: size and mtime only


def test_a_file_output_never_replaces_a_folder(tmp_path):
    """os.replace of a file onto a folder raised IsADirectoryError and left the temporary file behind."""
    held = tmp_path / "out.tif"
    held.mkdir()
    (held / "keep").write_text("1")
    for refuse in (lambda: check_writable(held, overwrite=True), lambda: atomic_path(held).__enter__()):
        with pytest.raises(InputError, match=r"out\.tif is an existing folder, and a \.tif output is a file"):
            refuse()
    late = tmp_path / "late.tif"  # a folder that appears while the file is written
    with pytest.raises(InputError, match=r"late\.tif is a folder, and this output is a file"):
        with atomic_path(late) as tmp:
            tmp.write_text("x")
            late.mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.tif", "out.tif"] and (held / "keep").exists()
    assert check_writable(tmp_path / "hf_folder", overwrite=True)  # outputs without a suffix may be folders
