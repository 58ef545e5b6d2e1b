"""A full disk while `geodino embed --overwrite` replaced an earlier output said "run it again with --resume to
finish OUT", but --resume then found the earlier OUT complete ("nothing to resume") and left the partial output
forever; the line now says --resume --overwrite, which finishes the partial output and replaces OUT."""

from __future__ import annotations

import errno
import os

from geodino import cli
from geodino.embed.pipeline import work_dir_for
from tests.embed.test_embed_lock_and_stops import _args, _input


def test_a_full_disk_over_an_earlier_output_says_resume_overwrite(tmp_path, capsys, monkeypatch) -> None:
    import geodino.embed.pipeline as pipeline

    src, out = _input(tmp_path), tmp_path / "f.tif"
    assert cli.main(_args(src, out)) == 0
    earlier = out.read_bytes()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / ".f.tmp-x.tif"))

    with monkeypatch.context() as mp:
        mp.setattr(pipeline, "_finalize", full)
        capsys.readouterr()
        assert cli.main(_args(src, out, "--overwrite", "--tile", "64")) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("geodino: error")]
    assert len(err) == 1 and "No space left on device" in err[0], err
    assert f"run it again with --resume --overwrite to finish {out} (its partial output" in err[0]
    assert out.read_bytes() == earlier and work_dir_for(out).exists()  # the earlier output intact
    assert cli.main(_args(src, out, "--resume", "--overwrite", "--tile", "64")) == 0  # what the line says works
    assert not work_dir_for(out).exists() and out.read_bytes() != earlier
