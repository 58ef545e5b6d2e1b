"""`sweep_temps` reads a temporary's pid as ASCII digits (as `temp_name` writes `os.getpid()`): `\\d` took any
Unicode digit, so a name geodino never writes (`.out.tmp-node_2-` + Arabic-Indic digits + `.tif`) counted as
another host's temporary and was deleted once a day old; the same for old-format gather copies."""

from __future__ import annotations

import os
import time
from pathlib import Path

from geodino.io_temps import STALE_AFTER_S, sweep_temps

ARABIC_34 = "\u0663\u0664"


def _aged(p: Path) -> Path:
    p.write_bytes(b"x")
    t = time.time() - STALE_AFTER_S - 60
    os.utime(p, (t, t))
    return p


def test_non_ascii_pid_is_no_temporary(tmp_path: Path) -> None:
    odd = _aged(tmp_path / f".out.tmp-node_2-{ARABIC_34}.tif")
    stale = _aged(tmp_path / ".out.tmp-node_2-34.tif")  # another host's, a day old: a killed run's
    assert sweep_temps(tmp_path / "out.tif") == [stale]
    assert odd.is_file()


def test_non_ascii_pid_is_no_legacy_gather_copy(tmp_path: Path) -> None:
    odd = _aged(tmp_path / f".step_00000004.ckpt.full-node2-{ARABIC_34}.pt")
    stale = _aged(tmp_path / ".step_00000004.ckpt.full-node2-34.pt")
    assert sweep_temps(tmp_path / "step_00000004.ckpt.full.pt") == [stale]
    assert odd.is_file()
