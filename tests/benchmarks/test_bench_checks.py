"""A speed ratio of two different computations means nothing: readers.py checks that geodino's windows are
rasterio's pixel for pixel, and backbone.py that the three models agree, before either times anything. Both printed
the ratio whatever the reads or outputs were (backbone.py printed "outputs agree within 5.0e+00" after the table)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.benchmarks.conftest import bench_module


class _Handle:
    """A rasterio handle stand-in: one band whose pixel value is col + 1000 * row."""

    def read(self, window):
        rows, cols = np.mgrid[0 : window.height, 0 : window.width]
        return ((cols + window.col_off) + 1000 * (rows + window.row_off))[None].astype(np.int32)


class _Archive:
    def __init__(self, shift: int) -> None:
        self.shift = shift

    def read(self, i, col, row, width, height):
        from rasterio.windows import Window

        data = _Handle().read(Window(col + self.shift, row, width, height))
        return data, np.ones(data.shape[1:], bool)


def test_readers_refuses_to_time_windows_that_differ_from_rasterio():
    check = bench_module("readers")._check_same_pixels
    wins = [(0, 3, 5), (0, 10, 2)]
    check(_Archive(shift=0), [_Handle()], wins, 4)  # the same pixels: nothing said
    with pytest.raises(SystemExit, match=r"window \(scene 0, col 3, row 5, 4 px\) differs from rasterio's"):
        check(_Archive(shift=1), [_Handle()], wins, 4)  # one column off


class _Model(torch.nn.Module):
    """The same tokens (1 CLS, 0 storage, 4 patches) plus `offset`, as geodino (a dict of tokens), transformers
    (`last_hidden_state`) and timm (`forward_features`: one tensor) return them."""

    def __init__(self, offset: float, timm: bool = False) -> None:
        super().__init__()
        self.offset, self.timm = offset, timm

    def _tokens(self, x):
        return x.mean(1).flatten(1)[:, :5, None].expand(-1, -1, 2) + self.offset

    def forward_features(self, x):
        t = self._tokens(x)
        if self.timm:
            return t
        return {"x_norm_clstoken": t[:, 0], "x_storage_tokens": t[:, :0], "x_norm_patchtokens": t[:, 1:]}

    def forward(self, pixel_values):
        return SimpleNamespace(last_hidden_state=self._tokens(pixel_values))


def test_backbone_refuses_to_time_models_that_disagree(monkeypatch):
    bench = bench_module("backbone")
    monkeypatch.setattr(bench, "build_trio", lambda arch: (_Model(0.0), _Model(0.0), _Model(0.5, timm=True)))
    rows = bench.bench("vit_x", 2, 4, 1, [], False, False, False, torch.device("cpu"))
    with pytest.raises(SystemExit, match=r"vit_x: geodino, transformers and timm disagree by 5.0e-01"):
        next(rows)
    monkeypatch.setattr(bench, "build_trio", lambda arch: (_Model(0.0), _Model(0.0), _Model(0.0, timm=True)))
    assert list(bench.bench("vit_x", 2, 4, 1, [], False, False, False, torch.device("cpu"))) == []  # agreed


def test_activation_checkpointing_ratios_are_against_the_off_row(monkeypatch, capsys):
    """`--modes full selective` divided every row by the first one run (full) under the header "vs off", and the
    loss check compared full with itself. The off row now always runs first and is the base."""
    ac = bench_module("activation_checkpointing")
    ran, mb = [], {"off": 400.0, "selective": 300.0, "full": 100.0}

    def fake_run(cmd, **kw):
        mode = cmd[-1]
        ran.append(mode)
        row = {"mode": mode, "blocks": 12, "step_mb": mb[mode], "s": 1.0, "losses": [1.0, 1.0]}
        return SimpleNamespace(returncode=0, stdout="RESULT " + ac.json.dumps(row), stderr="")

    monkeypatch.setattr(ac.subprocess, "run", fake_run)
    assert ac.main(["--modes", "full", "selective", "--device", "cpu"]) == 0
    assert ran == ["off", "full", "selective"]
    table = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    rows = {cells[1].strip(): cells[3].strip() for cells in table}
    assert rows["off"] == "1.00" and rows["full"] == "0.25" and rows["selective"] == "0.75"
