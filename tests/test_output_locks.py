"""A second `data curate`, `viz attention` or `export` into an output another run is writing stops with one line
(exit 2): outside training nothing was locked, so two curations with two backbones into one --out both exited 0
and could cluster a mix of embeddings (each deleted the other's chunks as it claimed them)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geodino import cli
from geodino.run_lock import locked_output, output_lock_path
from tests.data.test_curate import SPEC, _image_archive
from tests.embed.conftest import random_image
from tests.test_bad_inputs import one_line_exit_2


@contextlib.contextmanager
def held_by_another_run(out: Path):
    """The output's lock, held as another process would hold it (its own open file)."""
    lock = output_lock_path(out)
    with open(lock, "w") as other:
        other.write("pid 4242")
        other.flush()
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    lock.unlink()


def _checkpoint(path: Path) -> Path:
    from geodino.models import build_model
    from geodino.train.checkpointing import FORMAT

    model = build_model("vit_tiny", patch_size=8, in_chans=3, depth=1)
    state = {f"arch.teacher.backbone.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "geodino": {"format": FORMAT, "backbone": model.config}}, path)
    return path


def test_curate_into_an_output_folder_another_run_writes_is_refused(tmp_path, capsys):
    root = _image_archive(tmp_path / "archive")
    out = tmp_path / "cur"
    run = [
        "data",
        "curate",
        root / "green",
        "-b",
        SPEC,
        "--size",
        "3",
        "--clusters",
        "2",
        "--dedup",
        "1.0",
        "--no-progress",
        "-o",
        out,
    ]
    with held_by_another_run(out):
        one_line_exit_2(
            capsys, tmp_path, *run, expect=(f"output folder {out} is being written by another run (pid 4242",)
        )
    assert cli.main([str(a) for a in run]) == 0  # once free, it runs, and leaves no lock file behind
    assert not output_lock_path(out).exists()


def test_viz_attention_into_an_output_folder_another_run_writes_is_refused(tmp_path, capsys):
    Image.fromarray(random_image(32, 32).transpose(1, 2, 0)).save(tmp_path / "a.png")
    out = tmp_path / "v2"
    run = ["viz", "attention", tmp_path / "a.png", "-b", "arch:vit_tiny?depth=1&seed=0", "-o", out]
    with held_by_another_run(out):
        one_line_exit_2(capsys, tmp_path, *run, expect=(f"output folder {out} is being written by another run",))
    assert cli.main([str(a) for a in run]) == 0
    assert not output_lock_path(out).exists() and (out / "attention.json").exists()


def test_export_onto_a_name_another_run_writes_is_refused(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path / "b.ckpt")
    out = tmp_path / "ex" / "m.pth"
    out.parent.mkdir()
    with held_by_another_run(out.with_suffix("")):  # refused before the checkpoint is read: no normalisation warning
        one_line_exit_2(capsys, tmp_path, "export", ckpt, out, expect=(f"export {out.with_suffix('')} is being",))
    with pytest.warns(UserWarning, match="normalisation"):
        assert cli.main(["export", str(ckpt), str(out)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.heads.pth", "m.pth", "m.safetensors", "m.stac.json"]


def test_the_same_process_may_nest_and_a_released_lock_is_free(tmp_path):
    out = tmp_path / "o"
    with locked_output(out), locked_output(out):  # nested writers in one process: a no-op
        assert output_lock_path(out).read_text() == f"pid {os.getpid()} on {socket.gethostname()}"
    assert not output_lock_path(out).exists()
    with held_by_another_run(out):
        pass  # free again


def test_convert_onto_a_name_another_run_writes_is_refused(tmp_path, capsys):
    """`convert` writes X.pth and its X.heads.pth sidecar (the build kwargs and normalisation of those weights): two
    converts onto one name at once both exited 0 and could leave the weights of one beside the sidecar of the other."""
    from geodino.models import build_model

    src, out = tmp_path / "a.pth", tmp_path / "c" / "m.pth"
    torch.save(build_model("vit_tiny", patch_size=8, in_chans=3, depth=1).state_dict(), src)
    out.parent.mkdir()
    with held_by_another_run(out.with_suffix("")):  # the lock of export m (m.pth, m.safetensors) too
        one_line_exit_2(
            capsys, tmp_path, "convert", src, out, expect=(f"output {out} is being written by another run (pid 4242",)
        )
    assert cli.main(["convert", str(src), str(out)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.heads.pth", "m.pth"]


def test_an_embed_product_onto_an_output_another_run_writes_is_refused(tmp_path, capsys, monkeypatch):
    """A product writes its map and sidecars (cluster: OUT.aux.xml class table, .qml, .sld): two runs into one --out
    at once both exited 0 and could leave the map of one beside the class table of the other."""
    from tests.embed.test_classify import feature_raster

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    feats = feature_raster(tmp_path / "f.tif", np.random.default_rng(0).normal(size=(8, 4, 4)))
    out = tmp_path / "c.tif"
    run = ["embed", "cluster", feats, "--out", out, "--k", "2"]
    with held_by_another_run(out):
        one_line_exit_2(capsys, tmp_path, *run, expect=(f"output {out} is being written by another run (pid 4242",))
    assert cli.main([str(a) for a in run]) == 0
    assert out.is_file() and (tmp_path / "c.tif.aux.xml").is_file() and not output_lock_path(out).exists()
