"""A resume checks the input's content, not only its path: an input replaced under the same name between a kill and
`--resume` gave a raster whose first rows came from the old file and the rest from the new one. The partial
output's store records the content (`input_identity`, the output's GEODINO_INPUT_IDENTITY); one without it (an
earlier version's) resumes as before."""

from __future__ import annotations

import json
from typing import Any

import pytest

from geodino import cli
from geodino.embed import embed_raster
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
    first = src.read_bytes()
    write_tif(src, random_image(96, 64, seed=1))  # the same size, bands and grid: only the pixels differ
    with pytest.raises(InputError) as err:
        embed_raster(src, conv_bb, out, resume=True, **OPTS)
    line = str(err.value)
    assert f"the input {src} of {out} changed since its partial output {work_dir_for(out)} was started" in line
    assert "pass --overwrite to start again from this one (overwrite=True in Python)" in line and "\n" not in line
    assert not out.exists()
    src.write_bytes(first)  # the input it was started from: it resumes
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
