"""`geodino export` and `convert` on a full disk said "the storage refused a write (No space left on device)"
without naming a file: torch.save's error carries no file name (a RuntimeError of its C++ writer over an OSError
without one) and safetensors' only the OS message. The line now names the output being written: the weights, the
`.heads.pth` sidecar or the `.safetensors` file."""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path

import pytest
import torch

from geodino import cli
from tests.test_output_locks import _checkpoint

FULL = "No space left on device"


def _torch_save_on_a_full_disk(fail_at: int):
    """torch.save as it fails on a full disk (measured on a 64 KiB tmpfs): the writer's RuntimeError, the OSError
    without a file name as its context; the first `fail_at - 1` calls succeed."""
    real, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) < fail_at:
            return real(obj, f, *args, **kwargs)
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from None

    return save


def _safetensors_on_a_full_disk(*args, **kwargs):
    raise RuntimeError(f"Error while serializing: I/O error: {FULL} (os error 28)")  # as SafetensorError says it


def _one_line_exit_1(capsys, *argv: object) -> str:
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny checkpoints record no normalisation
        code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.mark.parametrize(
    ("out", "fail_at", "named"),
    [("c.pth", 1, "c.pth"), ("c.pth", 2, "c.heads.pth"), ("t.pth", 1, "t.pth"), ("c.safetensors", 0, "c.safetensors")],
)
def test_convert_on_a_full_disk_names_the_file(tmp_path, capsys, monkeypatch, out, fail_at, named) -> None:
    from geodino.models import build_model

    src = tmp_path / "src.pth"
    torch.save(build_model("vit_tiny", patch_size=8, in_chans=3, depth=1).state_dict(), src)
    if fail_at:
        monkeypatch.setattr(torch, "save", _torch_save_on_a_full_disk(fail_at))
    else:
        monkeypatch.setattr("safetensors.torch.save_file", _safetensors_on_a_full_disk)
    layout = ["--to", "timm"] if out.startswith("t.") else []
    line = _one_line_exit_1(capsys, "convert", src, tmp_path / "o" / out, *layout)
    assert line.startswith(f"geodino: error: the storage refused a write writing {tmp_path / 'o' / named} ({FULL})")


@pytest.mark.parametrize(("fail_at", "named"), [(1, "m.pth"), (2, "m.heads.pth")])
def test_export_on_a_full_disk_names_the_file(tmp_path, capsys, monkeypatch, fail_at, named) -> None:
    ckpt = _checkpoint(tmp_path / "b.ckpt")
    monkeypatch.setattr(torch, "save", _torch_save_on_a_full_disk(fail_at))
    line = _one_line_exit_1(capsys, "export", ckpt, tmp_path / "ex" / "m.pth")
    assert line.startswith(f"geodino: error: the storage refused a write writing {tmp_path / 'ex' / named} ({FULL})")
    assert not (tmp_path / "ex").exists()  # the folder the run made is removed with what it held


def test_a_refusal_that_names_its_file_keeps_it() -> None:
    from geodino.storage_errors import named_refusal

    assert named_refusal(OSError(errno.ENOSPC, FULL, "/a/x.tif"), Path("/b/y.pth")) is None
    assert named_refusal(ValueError("a bug"), Path("/b/y.pth")) is None
    got = named_refusal(RuntimeError(f"I/O error: {FULL}"), Path("/b/y.pth"))
    assert isinstance(got, OSError) and (got.errno, got.filename) == (errno.ENOSPC, "/b/y.pth")


@pytest.mark.parametrize("layout", ["official", "timm"])
def test_a_convert_over_an_earlier_one_failing_at_the_sidecar_keeps_the_earlier_pair(
    tmp_path, capsys, monkeypatch, layout
) -> None:
    """The sidecar was written after the new weights were in place: a full disk there left them beside the earlier
    file's sidecar, whose build kwargs and normalisation record `info` then reported for them."""
    from geodino.models import build_model

    torch.manual_seed(0)
    first, second = (tmp_path / "a.pth", tmp_path / "b.pth")
    torch.save(build_model("vit_tiny", patch_size=8, in_chans=3, depth=1).state_dict(), first)
    torch.save(build_model("vit_tiny", patch_size=8, in_chans=3, depth=2).state_dict(), second)
    out = tmp_path / "o" / "c.pth"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(["convert", str(first), str(out), "--to", layout]) == 0
    before = {p.name: p.read_bytes() for p in out.parent.iterdir() if not p.name.endswith(".lock")}
    assert set(before) == {"c.pth", "c.heads.pth"}
    monkeypatch.setattr(torch, "save", _torch_save_on_a_full_disk(2))  # the weights are written, the sidecar not
    line = _one_line_exit_1(capsys, "convert", second, out, "--to", layout, "--overwrite")
    assert f"writing {out.with_name('c.heads.pth')} ({FULL})" in line
    assert {p.name: p.read_bytes() for p in out.parent.iterdir() if not p.name.endswith(".lock")} == before
