"""A resume checks the input's content, not only its path: an input replaced under the same name between a kill and
`--resume` gave a raster whose first rows came from the old file and the rest from the new one. The partial
output's store records the content (`input_identity`, the output's GEODINO_INPUT_IDENTITY); one without it (an
earlier version's) resumes as before."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from geodino import cli
from geodino.embed import embed_raster
from geodino.embed.input_stamp import RECORD
from geodino.embed.workdir import PLAN_FILE, STORE, work_dir_for
from geodino.errors import InputError
from tests.embed.conftest import random_image, write_tif
from tests.test_bad_inputs import one_line_exit_2

OPTS: dict[str, Any] = dict(tile=32, overlap=8, chunk=8, progress=False)
SPEC = "arch:vit_tiny?depth=1&seed=0&patch_size=8"


def _partial(tmp_path, bb, name: str):
    """A partial output of `name` (rank 0 of 2 writes half the blocks, as a killed run leaves one) and its input."""
    src = write_tif(tmp_path / "in.tif", random_image(96, 64))
    out = tmp_path / name
    embed_raster(src, bb, out, world_size=2, rank=0, **OPTS)
    assert not out.exists() and (work_dir_for(out) / PLAN_FILE).exists()
    return src, out


@pytest.mark.parametrize("name", ["o.tif", "o.zarr"])
def test_a_resume_from_a_replaced_input_is_refused_and_from_the_same_one_finishes(tmp_path, conv_bb, name):
    src, out = _partial(tmp_path, conv_bb, name)
    first, st = src.read_bytes(), src.stat()
    write_tif(src, random_image(96, 64, seed=1))  # the same size, bands and grid: only the pixels differ
    with pytest.raises(InputError) as err:
        embed_raster(src, conv_bb, out, resume=True, **OPTS)
    line = str(err.value)
    assert f"the input {src} of {out} changed since its partial output {work_dir_for(out)} was started" in line
    assert "pass --overwrite to start again from this one (overwrite=True in Python)" in line and "\n" not in line
    assert not out.exists()
    src.write_bytes(first)  # the input it was started from, its time too (`cp -p` of a backup): it resumes
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert embed_raster(src, conv_bb, out, resume=True, **OPTS) == out and out.exists()
    assert not work_dir_for(out).exists()


def test_a_partial_output_that_records_no_input_content_resumes(tmp_path, conv_bb):
    """A store written before the input's content was recorded has no `input_identity`: nothing to compare."""
    src, out = _partial(tmp_path, conv_bb, "o.tif")
    store = work_dir_for(out) / STORE
    for rel in (".zattrs", "embedding/.zattrs"):
        attrs = json.loads((store / rel).read_text())
        attrs.pop("input_identity")
        (store / rel).write_text(json.dumps(attrs))
    meta = json.loads((store / ".zmetadata").read_text())
    for rel in (".zattrs", "embedding/.zattrs"):
        meta["metadata"][rel].pop("input_identity")
    (store / ".zmetadata").write_text(json.dumps(meta))
    assert embed_raster(src, conv_bb, out, resume=True, **OPTS) == out and out.exists()


def test_a_finished_output_of_a_replaced_input_is_not_called_complete(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in.tif", random_image(32, 48))
    out = embed_raster(src, conv_bb, tmp_path / "o.tif", **OPTS)
    write_tif(src, random_image(32, 48, seed=1))
    with pytest.raises(InputError, match=r"o\.tif is complete but was written with other settings: input content "):
        embed_raster(src, conv_bb, out, resume=True, **OPTS)


def test_the_cli_refuses_a_resume_from_a_replaced_input_in_one_line_with_exit_2(tmp_path, capsys):
    src, out = write_tif(tmp_path / "in.tif", random_image(96, 64)), tmp_path / "f.tif"
    args = ["embed", src, "-b", SPEC, "--out", out, "--tile", "32", "--overlap", "8", "--chunk", "4", "--no-progress"]
    assert cli.main([str(a) for a in (*args, "--world-size", "2", "--rank", "0")]) == 0
    assert not out.exists() and work_dir_for(out).exists()
    write_tif(src, random_image(96, 64, seed=1))
    one_line_exit_2(
        capsys, tmp_path, *args, "--resume",
        expect=(f"the input {src} of {out} changed since its partial output", "pass --overwrite to start again"),
    )  # fmt: skip


def _float_partial(tmp_path, bb):
    """A partial output of an uncompressed float32 input larger than 64 KiB (its pixels reach past the head that
    `input_identity` hashes), and that input."""
    src = write_tif(tmp_path / "in.tif", random_image(96, 64, dtype="float32"))
    assert src.stat().st_size > 65536 + 4096
    out = tmp_path / "o.tif"
    embed_raster(src, bb, out, world_size=2, rank=0, **OPTS)
    assert (work_dir_for(out) / RECORD).is_file()
    return src, out


def test_an_edit_past_the_first_64_kib_that_keeps_the_size_is_refused(tmp_path, conv_bb):
    """The old check compared the size and the head's sha256 only: this edit kept both, and the resume took the
    rest of the raster from the new pixels. The work folder's record of the file (its modification time) refuses
    it; the input restored with its time (`cp -p` of a backup) resumes, to the bytes of an uninterrupted run."""
    import rasterio

    src, out = _float_partial(tmp_path, conv_bb)
    first, st = src.read_bytes(), src.stat()
    with open(src, "r+b") as fh:  # in place, past the head: values of the last tile row
        fh.seek(65536 + 2000)
        fh.write(bytes(8))
    with (
        rasterio.open(src) as ds,
        rasterio.open(write_tif(tmp_path / "was.tif", random_image(96, 64, dtype="float32"))) as was,
    ):
        assert not (ds.read() == was.read()).all()  # the pixels differ
    assert src.stat().st_size == st.st_size and src.read_bytes()[:65536] == first[:65536]
    with pytest.raises(InputError) as err:
        embed_raster(src, conv_bb, out, resume=True, **OPTS)
    line = str(err.value)
    assert f"the input {src} of {out} changed since its partial output {work_dir_for(out)} was started" in line
    assert f"(then {st.st_size} bytes modified " in line and " UTC, now " in line and "\n" not in line
    assert not out.exists()
    src.write_bytes(first)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert embed_raster(src, conv_bb, out, resume=True, **OPTS) == out
    want = embed_raster(src, conv_bb, tmp_path / "want.tif", **OPTS)
    assert out.read_bytes() == want.read_bytes()  # the work folder's record is not in the output


def test_a_touched_input_is_refused_and_one_whose_mode_changed_resumes(tmp_path, conv_bb, monkeypatch):
    """A new modification time with the same bytes cannot be told from an edit past the head without reading the
    whole file: refused (its time put back, it resumes). A `chmod` moves only the change time: the head is hashed,
    the same, and it resumes. Nothing is hashed for an input whose stat is as recorded."""
    from geodino.embed import file_stamps

    src, out = _float_partial(tmp_path, conv_bb)
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(InputError, match=r"changed since its partial output .* \(then \d+ bytes modified "):
        embed_raster(src, conv_bb, out, resume=True, **OPTS)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    src.chmod(0o600)
    hashed: list = []
    state = file_stamps.file_state
    monkeypatch.setattr(file_stamps, "file_state", lambda p: hashed.append(p) or state(p))
    assert embed_raster(src, conv_bb, out, resume=True, **OPTS) == out
    assert hashed == [src]


def test_an_unchanged_input_is_not_hashed_again_by_its_record(tmp_path, conv_bb, monkeypatch):
    """Its stat as recorded and not changed within RACY_NS of the record: trusted with no read of the record's own
    (the store's identity is still compared, as before)."""
    from geodino.embed import file_stamps

    monkeypatch.setattr(file_stamps, "RACY_NS", 0)
    src, out = _float_partial(tmp_path, conv_bb)
    monkeypatch.setattr(file_stamps, "file_state", lambda p: pytest.fail(f"hashed {p}"))
    assert embed_raster(src, conv_bb, out, resume=True, **OPTS) == out


def test_a_partial_output_without_a_record_of_its_input_file_resumes_as_before(tmp_path, conv_bb, monkeypatch):
    """A work folder of an earlier version has no `input_file.json`: checked by the store's identity alone, as
    then (a touch passes), and recorded from then on."""
    from geodino.embed import input_stamp

    src, out = _float_partial(tmp_path, conv_bb)
    (work_dir_for(out) / RECORD).unlink()
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    kept: list = []
    keep = input_stamp.keep_input_record
    monkeypatch.setattr(input_stamp, "keep_input_record", lambda work, path: kept.append(work) or keep(work, path))
    assert embed_raster(src, conv_bb, out, resume=True, **OPTS) == out
    assert kept == [work_dir_for(out)]
