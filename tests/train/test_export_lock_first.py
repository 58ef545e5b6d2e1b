"""`geodino export` took its output lock inside `save_export`, after the checkpoint was read: a second export onto
the same name read a whole checkpoint (minutes for a big one) before it was refused. The lock is now taken first:
the refusal is one line at once, and the checkpoint is never read."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

from geodino import cli
from geodino.run_lock import output_lock_path
from tests.test_bad_inputs import one_line_exit_2
from tests.test_output_locks import _checkpoint

HOLD = textwrap.dedent(
    """
    import fcntl, os, sys
    with open(sys.argv[1], "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        print("held", flush=True)
        sys.stdin.read()  # until the test closes our stdin
    """
)


def test_export_onto_a_locked_name_is_refused_before_the_checkpoint_is_read(tmp_path, capsys, monkeypatch):
    from geodino.train import checkpointing

    ckpt = _checkpoint(tmp_path / "b.ckpt")
    out = tmp_path / "ex" / "m.pth"
    out.parent.mkdir()
    reads: list[object] = []
    real = checkpointing.load_file
    monkeypatch.setattr(checkpointing, "load_file", lambda *a, **kw: reads.append(a[0]) or real(*a, **kw))
    lock = output_lock_path(out.with_suffix(""))
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout.readline().strip() == "held"
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            line = one_line_exit_2(capsys, tmp_path, "export", ckpt, out)
        assert line == (
            f"geodino: error: export {out.with_suffix('')} is being written by another run (pid {other.pid}, lock "
            f"{lock}); wait for it to finish (a killed run frees it) or choose another export"
        )
        assert reads == []  # refused before the checkpoint was read
        assert not [w for w in seen if "normalisation" in str(w.message)]  # nor looked into
    finally:
        other.stdin.close()
        assert other.wait(timeout=60) == 0
    lock.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny checkpoint records no normalisation
        assert cli.main(["export", str(ckpt), str(out)]) == 0  # once free, it runs
    assert [str(p) for p in reads] == [str(ckpt)]
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.heads.pth", "m.pth", "m.safetensors", "m.stac.json"]
