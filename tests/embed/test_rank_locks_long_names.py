"""Ranks of `geodino embed --world-size N` each lock their own rank of one output, and a single-process run onto
that output refuses while any rank holds one (`workdir.output_lock`). The ranks' locks were found by a glob of the
output's name: a name with glob characters (`f[1].tif`) matched none, and a long name (one whose rank lock name is
cut to fit 255 bytes, `io_temps.aside_name`) was cut with its rank, so the glob matched none either; the single run
then wrote the output the ranks were writing."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from geodino.embed.workdir import output_lock
from geodino.errors import InputError


def _rank_holding(outs: list[Path]) -> tuple[int, int]:
    """(pid, write end of its pipe) of a forked process holding rank 1 of each output until the pipe is closed."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(go_w)  # else the read below never ends: this process would hold the pipe open itself
            with contextlib.ExitStack() as held:
                for out in outs:
                    held.enter_context(output_lock(out, SimpleNamespace(world_size=2, rank=1)))
                os.write(ready_w, b"1")
                os.read(go_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"1"
    os.close(ready_r)
    return pid, go_w


def test_a_single_run_refuses_while_a_rank_holds_the_output(tmp_path: Path) -> None:
    outs = [tmp_path / "f[1].tif", tmp_path / ("a" * 234 + ".tif")]  # glob characters; 238 bytes: its rank lock cut
    pid, go = _rank_holding(outs)
    try:
        for out in outs:
            with pytest.raises(InputError, match=r"is being written by another run \(pid \d+ on "):
                with output_lock(out, SimpleNamespace(world_size=1, rank=0)):
                    pass
            with pytest.raises(InputError, match=r"rank 1 of output .* is being written by another run"):
                with output_lock(out, SimpleNamespace(world_size=2, rank=1)):
                    pass
            with output_lock(out, SimpleNamespace(world_size=2, rank=0)):  # another rank shares the output
                pass
    finally:
        os.close(go)
        assert os.waitpid(pid, 0)[1] == 0
    for out in outs:
        with output_lock(out, SimpleNamespace(world_size=1, rank=0)):  # the rank has ended: free
            pass
    assert list(tmp_path.iterdir()) == []  # no lock file left
