"""`geodino pretrain` ends with an export, and the export with its STAC item (MLM): what the run trained on and how
far, next to the weights it describes."""

from __future__ import annotations

import pytest

pystac = pytest.importorskip("pystac")


def test_the_runs_export_has_a_stac_item_naming_its_data_and_step(tiny_run, tiny_data):
    from pystac.extensions.mlm import MLMExtension

    from geodino.models.checkpoints import read_backbone_weights

    item = pystac.Item.from_file(str(tiny_run / "export" / "teacher.stac.json"))
    mlm = MLMExtension.ext(item)
    weights = read_backbone_weights(tiny_run / "export" / "teacher.pth")
    assert str(tiny_data) in mlm.pretrained_source and item.properties["geodino:step"] == 2
    assert item.properties["geodino:network"] == "teacher"
    assert mlm.output[0].result.shape == [-1, weights.config["embed_dim"]]
    assert item.assets["model"].get_absolute_href() == str((tiny_run / "export" / "teacher.pth").resolve())
    assert list(mlm.input[0].bands) == weights.normalization["bands"]
