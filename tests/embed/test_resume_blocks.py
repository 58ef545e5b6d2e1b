"""A resumed partial output must use the blocks it was started with, not just the same layer *name*: a name's
rule may change between versions (cd448c2 moved `four_even` on depths not divisible by 4: depth 6 gave
[0, 1, 2, 3], now [1, 2, 4, 5])."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

from geodino.backbones.layers import layer_indices
from geodino.embed import embed_raster
from geodino.embed.workdir import PLAN_FILE, STORE, work_dir_for
from geodino.errors import InputError
from tests.embed.conftest import random_image, write_tif
from tests.embed.toy_backbones import ConvBackbone

OPTS: dict[str, Any] = dict(tile=32, overlap=8, chunk=8, layers="four_even", progress=False)


class SixBlocks(ConvBackbone):
    """Six blocks, layer set names resolved as `FrozenBackbone.features` resolves them."""

    def __init__(self) -> None:
        super().__init__(in_chans=3, dim=4, patch=4, n_convs=6)

    def features(self, x, layers: Any = "last", norm: bool = True):
        if isinstance(layers, str):
            layers = layer_indices(layers, self.n_blocks)
        return super().features(x, layers=layers, norm=norm)


def _partial(tmp_path):
    src = write_tif(tmp_path / "in.tif", random_image(64, 64))
    out = tmp_path / "o.tif"
    embed_raster(src, SixBlocks(), out, world_size=2, rank=0, **OPTS)  # half the blocks: a partial output
    work = work_dir_for(out)
    assert not out.exists() and (work / PLAN_FILE).exists()
    return src, out, work


def _set_store_layers(work, blocks) -> None:
    """Make the store's metadata say the run used `blocks` (what an earlier version's four_even gave)."""
    for path in (work / STORE / ".zattrs", work / STORE / "embedding" / ".zattrs"):
        attrs = json.loads(path.read_text())
        attrs["layers"] = json.dumps(blocks)
        path.write_text(json.dumps(attrs))
    meta = work / STORE / ".zmetadata"
    if meta.exists():  # consolidated metadata holds the same attributes
        text = json.loads(meta.read_text())
        for key in (".zattrs", "embedding/.zattrs"):
            text["metadata"][key]["layers"] = json.dumps(blocks)
        meta.write_text(json.dumps(text))


def test_plan_record_holds_the_resolved_blocks(tmp_path):
    _, _, work = _partial(tmp_path)
    plan = json.loads((work / PLAN_FILE).read_text())
    assert plan["layers"] == "four_even" and plan["blocks"] == [1, 2, 4, 5]


def test_resume_refuses_other_blocks_under_the_same_name(tmp_path):
    src, out, work = _partial(tmp_path)
    plan = json.loads((work / PLAN_FILE).read_text())
    plan["blocks"] = [0, 1, 2, 3]  # written when four_even resolved otherwise
    (work / PLAN_FILE).write_text(json.dumps(plan))
    with pytest.raises(
        InputError, match=r"other settings: layers \(blocks\) \[0, 1, 2, 3\] \(this run: \[1, 2, 4, 5\]\)"
    ):
        embed_raster(src, SixBlocks(), out, resume=True, **OPTS)


def test_an_older_plan_record_without_blocks_is_checked_against_the_store_metadata(tmp_path):
    """A run of a version before the record held `blocks`: its store metadata says which blocks it used."""
    src, out, work = _partial(tmp_path)
    plan = json.loads((work / PLAN_FILE).read_text())
    plan.pop("blocks", None)  # as an earlier version wrote it
    (work / PLAN_FILE).write_text(json.dumps(plan))
    _set_store_layers(work, [0, 1, 2, 3])
    with pytest.raises(InputError, match=r"layers \(blocks\) \[0, 1, 2, 3\] \(this run: \[1, 2, 4, 5\]\)"):
        embed_raster(src, SixBlocks(), out, resume=True, **OPTS)


def test_an_older_plan_record_with_the_same_blocks_resumes(tmp_path):
    src, out, work = _partial(tmp_path)
    plan = json.loads((work / PLAN_FILE).read_text())
    plan.pop("blocks", None)  # as an earlier version wrote it
    (work / PLAN_FILE).write_text(json.dumps(plan))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert embed_raster(src, SixBlocks(), out, resume=True, **OPTS) == out
    assert not [w for w in seen if "blocks it used" in str(w.message)]  # the store says which: nothing guessed


def test_without_store_metadata_the_recorded_name_is_resolved_and_said(tmp_path):
    *_, work = _partial(tmp_path)
    plan = json.loads((work / PLAN_FILE).read_text())
    plan.pop("blocks", None)  # as an earlier version wrote it
    (work / PLAN_FILE).write_text(json.dumps(plan))
    from geodino.embed.workdir import check_partial

    (work / STORE / ".zattrs").rename(work / STORE / ".zattrs.bak")
    try:
        with pytest.warns(
            UserWarning, match=r"records layers='four_even' but not the blocks it used; taking \[1, 2, 4, 5\]"
        ):
            check_partial(work, {**plan, "blocks": [1, 2, 4, 5]})
    finally:
        (work / STORE / ".zattrs.bak").rename(work / STORE / ".zattrs")
