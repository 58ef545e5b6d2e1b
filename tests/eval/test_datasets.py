"""Probe dataset adapters on tiny fake copies in torchgeo's on-disk layouts, plus generic class folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geodino.errors import ConfigError, InputError
from geodino.eval.datasets import IGNORE_INDEX, DatasetConfig, build_dataset, check_classes, split_indices

# ------------------------------------------------------------------------------------- fake torchgeo copies


def _tif(path: Path, arr: np.ndarray) -> None:
    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    from rasterio.transform import from_origin

    # georeferenced as the real datasets' GeoTIFFs are (rasterio warns on writing a TIFF without)
    grid = {"crs": "EPSG:32633", "transform": from_origin(500000, 4000000, 10, 10)}
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
                       dtype=arr.dtype, **grid) as dst:  # fmt: skip
        dst.write(arr)


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_eurosat(root: Path, size: int = 16) -> dict[str, list[str]]:
    """torchgeo EuroSAT layout: split lists + 13-band uint16 GeoTIFFs under ds/images/.../tif/<Class>/."""
    rng = np.random.default_rng(0)
    base = root / "ds/images/remote_sensing/otherDatasets/sentinel_2/tif"
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for c in ("Forest", "River"):
        for i in range(4):
            name = f"{c}_{i + 1}"
            arr = rng.integers(0, 10000, size=(13, size, size), dtype=np.uint16)
            arr[3] = 1000 * (i + 1)  # B04 known value: checks band order and scaling
            _tif(base / c / f"{name}.tif", arr)
            split = "train" if i < 2 else ("val" if i == 2 else "test")
            splits[split].append(name + ".jpg")
    for s, names in splits.items():
        (root / f"eurosat-{s}.txt").write_text("\n".join(names) + "\n")
    return splits


def make_loveda(root: Path, size: int = 16) -> None:
    rng = np.random.default_rng(0)
    for split in ("Train", "Val"):
        for scene in ("Urban", "Rural"):
            for i in range(2):
                _png(root / split / scene / "images_png" / f"{i}.png", rng.integers(0, 255, (size, size, 3), np.uint8))
                mask = rng.integers(0, 8, (size, size), dtype=np.uint8)
                mask[0, 0], mask[0, 1] = 0, 7
                _png(root / split / scene / "masks_png" / f"{i}.png", mask)


def make_vhr10(root: Path, n: int = 5, size: int = 32) -> None:
    rng = np.random.default_rng(0)
    folder = root / "NWPU VHR-10 dataset"
    (root / "NWPU VHR-10 dataset.zip").parent.mkdir(parents=True, exist_ok=True)
    (root / "NWPU VHR-10 dataset.zip").write_bytes(b"placeholder")
    images, anns = [], []
    for i in range(n):
        _png(folder / "positive image set" / f"{i + 1:03d}.jpg", rng.integers(0, 255, (size, size, 3), np.uint8))
        images.append({"id": i, "file_name": f"{i + 1:03d}.jpg", "width": size, "height": size})
        x, y, w, h = 2 + i, 3, 10, 8
        seg = [[x, y, x + w, y, x + w, y + h, x, y + h]]
        anns.append({"id": i + 1, "image_id": i, "category_id": (i % 10) + 1, "bbox": [x, y, w, h],
                     "area": w * h, "iscrowd": 0, "segmentation": seg})  # fmt: skip
    cats = [{"id": k, "name": f"c{k}"} for k in range(1, 11)]
    (folder / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))


def make_dior(root: Path, size: int = 32) -> None:
    rng = np.random.default_rng(0)
    rows = ["image_path,label_path,split"]
    for i, split in enumerate(["train", "train", "val"]):
        img = f"Images_trainval/{i:05d}.jpg"
        _png(root / img, rng.integers(0, 255, (size, size, 3), np.uint8))
        xml = f"Annotations_trainval/{i:05d}.xml"
        (root / xml).parent.mkdir(parents=True, exist_ok=True)
        (root / xml).write_text(
            f"<annotation><filename>{i:05d}.jpg</filename>"
            "<object><name>ship</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>11</xmax><ymax>12</ymax></bndbox>"
            "</object><object><name>windmill</name><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>20</xmax><ymax>30</ymax>"
            "</bndbox></object></annotation>"
        )
        rows.append(f"{img},{xml},{split}")
    (root / "sample_df.csv").write_text("\n".join(rows) + "\n")


BEN_S2 = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")


def make_bigearthnet(root: Path) -> None:
    """BigEarthNet v1 layout for bands='s2': split csvs + BigEarthNet-v1.0/<patch>/<patch>_<band>.tif + json."""
    rng = np.random.default_rng(0)
    labels = [["Continuous urban fabric", "Sea and ocean"], ["Coniferous forest"], ["Sea and ocean", "Pastures"]]
    (root / "BigEarthNet-S1-v1.0").mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test"):
        lines = []
        for i, lab in enumerate(labels):
            patch = f"S2A_{split}_{i}"
            for b in BEN_S2:
                size = 12 if b in ("B02", "B03", "B04", "B08") else 6
                _tif(root / "BigEarthNet-v1.0" / patch / f"{patch}_{b}.tif",
                     rng.integers(0, 5000, (1, size, size), dtype=np.uint16))  # fmt: skip
            (root / "BigEarthNet-v1.0" / patch / f"{patch}_labels_metadata.json").write_text(
                json.dumps({"labels": lab})
            )
            lines.append(f"{patch},S1_{split}_{i}")
        (root / f"bigearthnet-{split}.csv").write_text("\n".join(lines) + "\n")


def make_folder(root: Path, classes: dict[str, int], size: int = 16, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for c, n in classes.items():
        for i in range(n):
            _png(root / c / f"{i}.png", rng.integers(0, 255, (size, size, 3), np.uint8))


# ------------------------------------------------------------------------------------------------- tests


def test_eurosat_adapter_scales_selects_bands_and_follows_splits(tmp_path):
    make_eurosat(tmp_path)
    ds = build_dataset(DatasetConfig(name="eurosat", root=str(tmp_path)), "train")
    assert ds.classes == ["Forest", "River"] and len(ds) == 4 and ds.task == "classification"
    s = ds[0]
    assert s["image"].shape == (13, 16, 16) and s["image"].dtype == torch.float32
    assert s["label"].dtype == torch.long and s["label"].shape == ()
    assert float(s["image"].max()) <= 1.0
    rgb = build_dataset(DatasetConfig(name="eurosat", root=str(tmp_path), bands=["rgb"]), "test")
    assert rgb.bands == ["B04", "B03", "B02"] and len(rgb) == 2
    img = rgb[0]["image"]
    assert img.shape == (3, 16, 16)
    assert torch.allclose(img[0], torch.full((16, 16), 0.4))  # B04 = 1000 * 4 DN -> 0.4 reflectance
    assert [int(rgb[i]["label"]) for i in range(2)] == [0, 1]
    with pytest.raises(ConfigError, match="'B99' is not a EuroSAT band"):
        build_dataset(DatasetConfig(name="eurosat", root=str(tmp_path), bands=["B99"]), "train")


def test_loveda_maps_nodata_to_ignore_index(tmp_path):
    make_loveda(tmp_path)
    cfg = DatasetConfig(name="loveda", root=str(tmp_path), test_split="val")
    ds = build_dataset(cfg, "train")
    assert len(ds) == 4 and ds.task == "segmentation" and len(ds.classes) == 7
    s = ds[0]
    assert s["image"].shape == (3, 16, 16) and s["mask"].dtype == torch.long
    assert int(s["mask"][0, 0]) == IGNORE_INDEX and int(s["mask"][0, 1]) == 6
    vals = set(torch.unique(s["mask"]).tolist())
    assert vals <= set(range(7)) | {IGNORE_INDEX}
    assert len(build_dataset(cfg, "test")) == 4  # test -> Val
    with pytest.raises(ConfigError, match="LoveDA's test split has no masks"):
        build_dataset(DatasetConfig(name="loveda", root=str(tmp_path)), "test")


def test_vhr10_boxes_are_xyxy_zero_based_with_seeded_split(tmp_path):
    make_vhr10(tmp_path)
    cfg = DatasetConfig(name="vhr10", root=str(tmp_path))
    parts = {s: build_dataset(cfg, s) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [3, 1, 1]
    all_idx = sorted(i for p in parts.values() for i in p.indices)
    assert all_idx == [0, 1, 2, 3, 4]
    ds = parts["train"]
    i = ds.indices[0]
    s = ds[0]
    assert s["boxes"].tolist() == [[2 + i, 3, 12 + i, 11]] and s["labels"].tolist() == [i % 10]
    assert ds.classes[0] == "airplane" and len(ds.classes) == 10


def test_vhr10_split_follows_split_seed(tmp_path):
    """data.split_seed draws another VHR-10 partition (it was fixed at seed 0), the same seed the same one."""
    make_vhr10(tmp_path, n=20)

    def test_part(seed: int) -> list[int]:
        return sorted(build_dataset(DatasetConfig(name="vhr10", root=str(tmp_path), split_seed=seed), "test").indices)

    assert test_part(0) == test_part(0) and test_part(0) != test_part(1) and len(test_part(1)) == 4


def test_dior_adapter(tmp_path):
    make_dior(tmp_path)
    ds = build_dataset(DatasetConfig(name="dior", root=str(tmp_path), test_split="val"), "train")
    assert len(ds) == 2 and len(ds.classes) == 20
    s = ds[0]
    assert s["boxes"].tolist() == [[1, 2, 11, 12], [5, 6, 20, 30]]
    assert s["labels"].tolist() == [13, 19]  # ship, windmill
    assert s["image"].shape == (3, 32, 32) and float(s["image"].max()) <= 1.0


def test_bigearthnet_multilabel_19_classes(tmp_path):
    make_bigearthnet(tmp_path)
    ds = build_dataset(DatasetConfig(name="bigearthnet", root=str(tmp_path)), "train")
    assert ds.task == "multilabel" and len(ds.classes) == 19 and len(ds) == 3
    s = ds[0]
    assert s["image"].shape == (12, 120, 120) and s["label"].dtype == torch.float32
    # Continuous urban fabric -> Urban fabric (0); Sea and ocean -> Marine waters (18)
    assert s["label"].nonzero().flatten().tolist() == [0, 18]
    ds43 = build_dataset(DatasetConfig(name="bigearthnet", root=str(tmp_path), label_set=43), "val")
    assert ds43[1]["label"].nonzero().flatten().tolist() == [23]


def test_image_folder_stratified_split_is_deterministic_and_disjoint(tmp_path):
    make_folder(tmp_path, {"a": 10, "b": 5})
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path), val_fraction=0.2, test_fraction=0.2)
    parts = {s: build_dataset(cfg, s) for s in ("train", "val", "test")}
    sets = [set(p.indices) for p in parts.values()]
    assert sum(map(len, sets)) == 15 and len(set.union(*sets)) == 15
    assert [len(parts[s]) for s in ("train", "val", "test")] == [9, 3, 3]
    labels = [int(parts["val"][i]["label"]) for i in range(3)]
    assert sorted(labels) == [0, 0, 1]
    assert build_dataset(cfg, "val").indices == parts["val"].indices
    assert parts["train"].key != parts["val"].key
    assert parts["train"][0]["image"].shape == (3, 16, 16)


def test_split_indices_keeps_one_per_class_in_train():
    parts = split_indices([0, 1, 1], 3, {"train": 0, "val": 0.5, "test": 0.5}, 0)
    assert 0 in parts["train"]


def test_class_mismatch_between_splits_is_one_line(tmp_path):
    make_folder(tmp_path / "train", {"a": 2, "b": 2})
    make_folder(tmp_path / "val", {"a": 1, "c": 1})
    make_folder(tmp_path / "test", {"a": 1})
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path))
    with pytest.raises(InputError, match=r"class 'c' in .*val has no training images in .*train"):
        build_dataset(cfg, "val")
    train = build_dataset(cfg, "train")
    test = build_dataset(cfg, "test")
    assert test.classes == ["a", "b"]
    check_classes(train, test)
    with pytest.raises(ConfigError, match=r"num_classes=5 but image_folder in .* has 2 classes \(a, b\)"):
        check_classes(train, test, num_classes=5)


def test_missing_folder_says_where_and_points_to_readme(tmp_path):
    with pytest.raises(InputError, match=r"dataset folder .*nowhere for 'eurosat' not found: .*datasets/README.md"):
        build_dataset(DatasetConfig(name="eurosat", root=str(tmp_path / "nowhere")), "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"'loveda' not found in .*empty: expected Train/.*datasets/README.md"):
        build_dataset(DatasetConfig(name="loveda", root=str(tmp_path / "empty")), "train")
    with pytest.raises(ConfigError, match="did you mean 'eurosat'"):
        build_dataset(DatasetConfig(name="eurosta", root=str(tmp_path)), "train")


def _settle(monkeypatch) -> None:
    """Run `folder_listing`'s clock an hour ahead: a listing of folders changed (by their ctime, which a test cannot
    date back) within `io_stamps.RACY_NS` is not reused; with it, the folders a test writes count as settled."""
    import time
    import types

    from geodino.eval import folder_listing

    real = time.time_ns
    monkeypatch.setattr(folder_listing, "time", types.SimpleNamespace(time_ns=lambda: real() + 3600 * 10**9))


def _count_listings(monkeypatch) -> dict[str, int]:
    """{folder: times listed} from now on (os.scandir and os.listdir: what os.walk, Path.iterdir and rglob use)."""
    import os

    seen: dict[str, int] = {}
    real = {"scandir": os.scandir, "listdir": os.listdir}

    def counting(name):
        def call(path="."):
            key = str(Path(os.fspath(path)).resolve())
            seen[key] = seen.get(key, 0) + 1
            return real[name](path)

        return call

    for name in real:
        monkeypatch.setattr(os, name, counting(name))
    return seen


@pytest.mark.parametrize("layout", ["one folder", "split folders"])
def test_a_dataset_folder_is_listed_once_for_all_splits(tmp_path, monkeypatch, layout):
    """The splits of an image_folder dataset each walked the root (a class folder: 5 times per split, 15 for
    train/val/test; EuroSAT has 27,000 files); now each folder is listed once per process and the listing is
    reused until a folder in it changes. An image rewritten in place still changes the dataset's stamp."""
    import os

    root = (tmp_path / "data").resolve()
    if layout == "one folder":
        make_folder(root, {"a": 5, "b": 4})
    else:
        for split, n in (("train", 4), ("val", 2), ("test", 2)):
            make_folder(root / split, {"a": n, "b": n}, seed=n)
    folders = [p for p in [root, *root.rglob("*")] if p.is_dir()]
    _settle(monkeypatch)
    cfg = DatasetConfig(name="image_folder", root=str(root))
    seen = _count_listings(monkeypatch)
    first = {s: build_dataset(cfg, s) for s in ("train", "val", "test")}
    assert seen == {str(p): 1 for p in folders if layout == "one folder" or p != root}  # the root: a split folder
    again = {s: build_dataset(cfg, s) for s in ("train", "val", "test")}  # a second probe in the same process
    assert set(seen.values()) == {1}
    assert all(again[s].key == first[s].key and again[s].indices == first[s].indices for s in first)
    assert sum(map(len, first.values())) == (9 if layout == "one folder" else 16)

    cls = root / ("b" if layout == "one folder" else "train/b")
    _png(cls / "new.png", np.zeros((16, 16, 3), np.uint8))  # a new image: its folder's mtime and ctime change
    after = {s: build_dataset(cfg, s) for s in ("train", "val", "test")}
    assert seen[str(cls)] == 2 and after["train"].key != first["train"].key  # listed again, once
    assert sum(map(len, after.values())) == sum(map(len, first.values())) + 1  # with the new image
    before = build_dataset(cfg, "train")
    counts = dict(seen)
    img = cls / "0.png"
    _png(img, np.full((16, 16, 3), 7, np.uint8))  # rewritten in place: no folder changes
    os.utime(img, ns=(0, os.stat(img).st_mtime_ns + 10**9))
    rewritten = build_dataset(cfg, "train")
    assert seen == counts  # no new listing
    assert rewritten.stamp != before.stamp and rewritten.key != before.key


def test_bigearthnet_s1_channels_carry_their_band_names(tmp_path):
    """torchgeo stacks the S1 files sorted by name (VH before VV, though it documents VV, VH): the channel named VV
    held VH backscatter, so bands=[VV] read VH. VV = -11 dB and VH = -19 dB everywhere here."""
    for split in ("train", "val", "test"):
        s1, s2 = f"S1A_IW_GRDH_1SDV_{split}_33UUP_61_39", f"S2A_MSIL2A_{split}_33UUP_61_39"
        for band, value in (("VV", -11), ("VH", -19)):
            _tif(tmp_path / "BigEarthNet-S1-v1.0" / s1 / f"{s1}_{band}.tif", np.full((1, 12, 12), value, np.float32))
        for i, b in enumerate(BEN_S2):
            _tif(tmp_path / "BigEarthNet-v1.0" / s2 / f"{s2}_{b}.tif", np.full((1, 12, 12), 100 * (i + 1), np.uint16))
        for folder, patch in (("BigEarthNet-S1-v1.0", s1), ("BigEarthNet-v1.0", s2)):
            meta = tmp_path / folder / patch / f"{patch}_labels_metadata.json"
            meta.write_text(json.dumps({"labels": ["Pastures"]}))
        (tmp_path / f"bigearthnet-{split}.csv").write_text(f"{s2},{s1}\n")

    def first_pixel(modality: str, bands: list[str]) -> list[float]:
        cfg = DatasetConfig(name="bigearthnet", root=str(tmp_path), modality=modality, bands=bands)
        ds = build_dataset(cfg, "train")
        return ds[0]["image"][:, 0, 0].tolist()

    assert first_pixel("s1", []) == [-11.0, -19.0]  # bands VV, VH
    assert first_pixel("s1", ["VV"]) == [-11.0] and first_pixel("s1", ["VH"]) == [-19.0]
    every = first_pixel("all", [])  # VV, VH, then B01 ... B12 (DN 100 ... 1200, / 10000)
    assert every[:2] == [-11.0, -19.0]
    assert every[2:] == pytest.approx([0.01 * (i + 1) for i in range(12)])


def test_a_tiff_chip_without_a_grid_is_read_without_rasterio_warning(tmp_path):
    """A chip dataset's TIFFs need no georeference (only pixels are read): rasterio's NotGeoreferencedWarning, which
    each such read gave, is no use to the user."""
    import warnings

    import rasterio

    from geodino.eval.datasets import read_array

    arr = np.arange(2 * 4 * 4, dtype=np.uint16).reshape(2, 4, 4)
    path = tmp_path / "chip.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio warns on writing it too
        with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=2, dtype="uint16") as dst:
            dst.write(arr)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_array(path), arr)
