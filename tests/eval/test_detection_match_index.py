"""match_boxes against a plain dict (the API; read_boxes returns a BoxTable that indexes itself once): the keys'
index by name and stem is built once when passed as `index=box_index(table)`, and every match is the one the
per-call index gives. Before, a plain dict was re-indexed for every image matched (no way to pass an index)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodino.errors import InputError
from geodino.eval import boxes
from geodino.eval.boxes import Boxes, match_boxes


def _table() -> dict[str, Boxes]:
    def b(x: int, label: str) -> Boxes:
        return Boxes(np.array([[x, x, x + 4, x + 4]], np.float32), [label], "plain dict")

    return {"a/x.tif": b(1, "car"), "b/x.tif": b(10, "ship"), "y.tif": b(2, "car"), "z.png": b(3, "tree")}


IMAGES = [Path("/d/a/x.tif"), Path("/d/b/x.tif"), Path("/e/y.tif"), Path("/e/z.tif"), Path("/e/none.tif")]


def test_a_prebuilt_index_gives_the_same_matches_and_is_built_once(monkeypatch):
    table = _table()
    per_call = [match_boxes(p, table) for p in IMAGES]
    calls = []
    real = boxes._index_keys
    monkeypatch.setattr(boxes, "_index_keys", lambda keys: calls.append(1) or real(keys))
    index = boxes.box_index(table)
    once = [match_boxes(p, table, index=index) for p in IMAGES]
    assert len(calls) == 1  # built once for five images
    assert [m and (m.labels, m.boxes.tolist()) for m in once] == [m and (m.labels, m.boxes.tolist()) for m in per_call]
    assert [m.labels if m else None for m in once] == [["car"], ["ship"], ["car"], ["tree"], None]
    with pytest.raises(InputError, match="matches none of"):  # refusals are the same too
        match_boxes(Path("/c/x.tif"), table, index=index)
    assert len(calls) == 1


def test_a_box_table_keeps_its_own_index(monkeypatch):
    table = boxes.BoxTable(_table())
    calls = []
    real = boxes._index_keys
    monkeypatch.setattr(boxes, "_index_keys", lambda keys: calls.append(1) or real(keys))
    assert [match_boxes(p, table).labels if match_boxes(p, table) else None for p in IMAGES][:2] == [["car"], ["ship"]]
    assert boxes.box_index(table) is table.index() and len(calls) == 1
