"""The image-folder rule memo (`geodino.eval.folder_rule`) is keyed by each setting that decides the rule besides the
files: a build of the same unchanged folder with another `data.file_scale`, or for a backbone recording another DN
scale, settles its own rule instead of being served the memo's (a suite's tasks build the same folder for several
backbones and settings in one process)."""

from __future__ import annotations

import time
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest

from geodino.eval import folder_rule
from geodino.eval.datasets import DatasetConfig
from geodino.eval.scaling import InputScaling
from tests.eval.test_declared_scaling import LANDSAT, dn_of, tagged


@pytest.fixture(autouse=True)
def _kept(monkeypatch: pytest.MonkeyPatch) -> OrderedDict:
    """An empty memo whose clock runs an hour ahead: the files a test writes count as settled, so rules are kept."""
    real = time.time_ns
    monkeypatch.setattr(folder_rule, "time", types.SimpleNamespace(time_ns=lambda: real() + 3600 * 10**9))
    kept: OrderedDict = OrderedDict()
    monkeypatch.setattr(folder_rule, "_MEMO", kept)
    return kept


class _Record:
    """A backbone stand-in recording the DN scale `scale` (`recorded_scale` reads its normalization)."""

    def __init__(self, scale: float) -> None:
        self.spec = f"scale{scale:g}"
        self.normalization = {"scale": scale, "mean": [0.4] * 3, "std": [1.0] * 3}


def _rule(root: Path, backbone: Any = None, file_scale: bool = True) -> str:
    """The rule settled for the uint16 3-band files of the image folder at `root` (train/val class folders)."""
    cfg = DatasetConfig(name="image_folder", root=str(root), file_scale=file_scale)
    folders = [root / s for s in ("train", "val")]
    scaling: InputScaling = folder_rule.settled_rule(cfg, root, folders, backbone, lambda d: sorted(d.rglob("*.tif")))[
        1
    ]
    return scaling.fixed[("uint16", 3)][2]


def _folder(root: Path, rule: Any) -> None:
    for split in ("train", "val"):
        for c in ("a", "b"):
            tagged(root / split / c / "0.tif", dn_of(0), rule)


def test_file_scale_false_is_not_served_the_declared_rule(tmp_path: Path, _kept: OrderedDict) -> None:
    _folder(tmp_path, LANDSAT)
    assert _rule(tmp_path).startswith("x*2.75e-05-0.2 (declared")
    assert len(_kept) == 1
    assert _rule(tmp_path, file_scale=False).startswith("x/10000 (by dtype")  # a memo keyed without it: declared


def test_a_backbone_recording_another_dn_scale_is_not_served_the_first_ones_rule(
    tmp_path: Path, _kept: OrderedDict
) -> None:
    _folder(tmp_path, None)
    assert _rule(tmp_path, _Record(1e-4)).startswith("x*0.0001 (the backbone's DN scale")
    assert len(_kept) == 1
    assert _rule(tmp_path, _Record(1 / 65535)).startswith("x*1.5259e-05 (the backbone's DN scale")
