"""DIOR's XML spells two classes `Expressway-Service-area` and `Expressway-toll-station`, while torchgeo's
`DIOR.classes` (0.8.1) holds `expresswayservicearea`/`expresswaytollstation` and `_load_target` looks the raw name
up (torchgeo issue #4048): every DIOR image with one of them raised KeyError in the probe adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torchgeo")


def _dior(root: Path, names: list[str]) -> Path:
    from PIL import Image

    (root / "img").mkdir(parents=True)
    (root / "ann").mkdir()
    rows = ["image_path,label_path,split"]
    for i, name in enumerate(names):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "img" / f"{i:05d}.jpg")
        (root / "ann" / f"{i:05d}.xml").write_text(
            f"<annotation><filename>{i:05d}.jpg</filename><object><name>{name}</name><pose>Unspecified</pose>"
            "<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax><ymax>12</ymax></bndbox></object></annotation>"
        )
        rows.append(f"img/{i:05d}.jpg,ann/{i:05d}.xml,train")
    (root / "sample_df.csv").write_text("\n".join(rows) + "\n")
    return root


def test_dior_reads_the_hyphenated_mixed_case_class_names(tmp_path: Path) -> None:
    from geodino.eval.datasets import DatasetConfig
    from geodino.eval.torchgeo_datasets import dior

    names = ["airplane", "Expressway-Service-area", "Expressway-toll-station", "golffield"]
    ds = dior(DatasetConfig(name="dior", root=str(_dior(tmp_path, names))), "train")
    labels = [int(ds[i]["labels"][0]) for i in range(len(ds))]
    want = ["airplane", "expresswayservicearea", "expresswaytollstation", "golffield"]
    assert [ds.classes[k] for k in labels] == want
    assert ds[1]["boxes"].tolist() == [[1.0, 2.0, 10.0, 12.0]]  # as written (torchgeo's frame)
