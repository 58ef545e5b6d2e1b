"""The dense probes' file keys take one path or a list of them, whichever the probe: canopy's and detection's
(lists before) read one folder, file or glob as a list of one (`train_images: /data/plots/` was refused with
"write it in brackets"), segmentation's (one text before) take a list, its masks paired with the images by name
over all entries, entry by entry where a name repeats. From a suite YAML, a command-line override and Python."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geodino.config import load_config, to_dict
from geodino.errors import ConfigError, InputError
from geodino.eval.canopy import CanopyProbeConfig
from geodino.eval.detection import DetectionProbeConfig, load_detection_set
from geodino.eval.runner import SuiteConfig, parse_tasks
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
from geodino.eval.segmentation_data import load_folder
from tests.eval.dense_backbone import tiny_backbone

CANOPY_KEYS = ("train_images", "train_chms", "val_images", "val_chms", "predict_images")
DETECTION_KEYS = ("train_images", "train_boxes", "val_images", "val_boxes", "predict_images")


def _suite(tmp_path: Path, task: dict, overrides: list[str] | None = None):
    """The parsed task `t` of a suite YAML holding `task` (as `geodino probe` reads it; nothing run)."""
    import yaml

    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"backbone": "x", "tasks": {"t": task}}))
    cfg = load_config(SuiteConfig, path, overrides or [])
    return parse_tasks(cfg, tmp_path / "out")["t"].cfg


@pytest.mark.parametrize(
    ("kind", "key"), [("canopy", k) for k in CANOPY_KEYS] + [("detection", k) for k in DETECTION_KEYS]
)
def test_a_bare_path_is_a_list_of_one_from_yaml_and_the_command_line(tmp_path: Path, kind: str, key: str) -> None:
    one = str(tmp_path / "plots") + "/"
    cfg = _suite(tmp_path, {"type": kind, key: one})
    assert getattr(cfg, key) == [one]
    assert to_dict(cfg)[key] == [one]  # recorded as the list it is read as
    cfg = _suite(tmp_path, {"type": kind}, [f"tasks.t.{key}={one}"])
    assert getattr(cfg, key) == [one]
    cfg = _suite(tmp_path, {"type": kind, key: [one, "b.tif"]})  # the list form as before
    assert getattr(cfg, key) == [one, "b.tif"]


@pytest.mark.parametrize("schema", [CanopyProbeConfig, DetectionProbeConfig])
def test_a_bare_path_in_python_is_a_list_of_one(schema, tmp_path: Path) -> None:
    cfg = schema(train_images="a.tif", predict_images=tmp_path)
    assert cfg.train_images == ["a.tif"] and cfg.predict_images == [str(tmp_path)]
    assert to_dict(cfg)["predict_images"] == [str(tmp_path)]
    assert schema(train_images="").train_images == []


def _voc(path: Path, image: str) -> None:
    path.write_text(
        f"<annotation><filename>{image}</filename><size><width>32</width><height>32</height><depth>3</depth></size>"
        "<object><name>tree</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>12</xmax><ymax>12</ymax></bndbox>"
        "</object></annotation>"
    )


def test_detection_reads_one_folder_given_as_text(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "img" / "a.png")
    _voc(tmp_path / "a.xml", "a.png")
    cfg = DetectionProbeConfig()
    cfg.train_images = str(tmp_path / "img")  # set after it was built: read as one folder, not letter by letter
    data, names = load_detection_set(cfg.train_images, str(tmp_path / "a.xml"), cfg, None)
    assert len(data) == 1 and names == ["tree"]


def _folder(root: Path, names: list[str], value: int, masks: str = "msk") -> tuple[Path, Path]:
    """Images and masks named `names`; every mask pixel is `value`, every image pixel 40 * value."""
    (root / "img").mkdir(parents=True, exist_ok=True)
    (root / masks).mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.fromarray(np.full((16, 16, 3), 40 * value, np.uint8)).save(root / "img" / f"{n}.png")
        Image.fromarray(np.full((16, 16), value, np.uint8)).save(root / masks / f"{n}_mask.png")
    return root / "img", root / masks


def test_segmentation_keeps_text_or_list_as_given(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    cfg = _suite(tmp_path, {"type": "segmentation", "num_classes": 2, "train_images": [a, b], "train_masks": a})
    assert cfg.train_images == [a, b] and cfg.train_masks == a
    assert to_dict(cfg)["train_images"] == [a, b] and to_dict(cfg)["train_masks"] == a
    cfg = _suite(tmp_path, {"type": "segmentation", "num_classes": 2}, [f"tasks.t.train_images=[{a},{b}]"])
    assert cfg.train_images == [a, b]
    assert SegmentationProbeConfig(train_images=[Path(a)], val_masks=Path(b)).train_images == [a]
    assert SegmentationProbeConfig(val_masks=Path(b)).val_masks == b


@pytest.mark.parametrize("value", [5, [["a"]], ["a", ""], {"a": 1}])
def test_segmentation_refuses_other_values_in_one_line(tmp_path: Path, value) -> None:
    with pytest.raises(ConfigError, match=r"tasks\.t\.train_images=.* must be a folder, file or glob, or a list"):
        _suite(tmp_path, {"type": "segmentation", "num_classes": 2, "train_images": value})


def _pairs(data) -> dict[str, int]:
    """Image path -> its mask's value, for every sample."""
    out = {}
    for i in range(len(data)):
        img, msk = data.items[i]
        out[f"{img.parent.parent.name}/{img.name}"] = int(np.asarray(Image.open(msk))[0, 0])
    return out


def test_segmentation_lists_pair_by_name_over_all_entries(tmp_path: Path) -> None:
    imgs_a, _ = _folder(tmp_path / "a", ["x", "y"], 1)
    imgs_b, _ = _folder(tmp_path / "b", ["z"], 0)
    masks = tmp_path / "masks"
    masks.mkdir()
    for n, v in (("x", 1), ("y", 1), ("z", 0)):  # all masks in one folder
        Image.fromarray(np.full((16, 16), v, np.uint8)).save(masks / f"{n}.png")
    data = load_folder([str(imgs_a), str(imgs_b)], str(masks), SegmentationProbeConfig(num_classes=2))
    assert _pairs(data) == {"a/x.png": 1, "a/y.png": 1, "b/z.png": 0}


def test_segmentation_names_repeated_across_folders_pair_entry_by_entry(tmp_path: Path) -> None:
    """LoveDA-style: urban and rural folders both hold 0.png; the i-th mask entry belongs to the i-th images."""
    urban = _folder(tmp_path / "urban", ["0", "1"], 1)
    rural = _folder(tmp_path / "rural", ["0", "1"], 0)
    cfg = SegmentationProbeConfig(num_classes=2)
    data = load_folder([str(urban[0]), str(rural[0])], [str(urban[1]), str(rural[1])], cfg)
    assert _pairs(data) == {"urban/0.png": 1, "urban/1.png": 1, "rural/0.png": 0, "rural/1.png": 0}
    with pytest.raises(
        InputError, match=r"mask name 0_mask\.png is in two places .*val_masks has 2 entries, val_images 1"
    ):
        load_folder(str(urban[0]), [str(urban[1]), str(rural[1])], cfg, None, ("val_images", "val_masks"))


def test_segmentation_refuses_polygons_beside_other_mask_entries(tmp_path: Path) -> None:
    imgs, masks = _folder(tmp_path, ["x"], 1)
    with pytest.raises(ConfigError, match=r"train_masks lists a vector file of polygons \(.*b\.gpkg\) beside"):
        load_folder(str(imgs), [str(masks), str(tmp_path / "b.gpkg")], SegmentationProbeConfig(num_classes=2))


def test_segmentation_runs_on_two_folders_and_records_them_apart(tmp_path: Path) -> None:
    """Both folders are read (3 + 3 training images), and the label budget names the kept images below their
    common folder (urban/0.png, rural/0.png: a file name alone said neither)."""
    folders = [_folder(tmp_path / place, ["0", "1", "2"], 1 if place == "urban" else 0) for place in ("urban", "rural")]
    for _, masks in folders:
        for i in range(3):  # two classes in each mask, so that neither folder alone trains one class
            m = np.zeros((16, 16), np.uint8)
            m[:, :8] = 1
            Image.fromarray(m).save(masks / f"{i}_mask.png")
    val = _folder(tmp_path / "val", ["v"], 1)
    keys = dict(num_classes=2, crop_size=16, epochs=1, min_steps=1, plots=0, progress=False, train_fraction=0.5)
    cfg = SegmentationProbeConfig(
        train_images=[str(f[0]) for f in folders],
        train_masks=[str(f[1]) for f in folders],
        val_images=str(val[0]),
        val_masks=str(val[1]),
        **keys,
    )
    run_segmentation(tiny_backbone(), cfg, tmp_path / "out")
    budget = json.loads((tmp_path / "out" / "segmentation_metrics.json").read_text())["label_budget"]
    assert budget["n_train_full"] == 6 and budget["n_train"] == 3
    assert len(budget["train_images"]) == 3
    assert all(name.split("/")[0] in ("urban", "rural") and name.endswith(".png") for name in budget["train_images"])


def _plot(root: Path, name: str, height: float) -> tuple[Path, Path]:
    """A 16 x 16 px georeferenced image rgb/<name>.tif and its CHM chm/<name>_CHM.tif of constant `height` m."""
    import rasterio
    from rasterio.transform import from_origin

    (root / "rgb").mkdir(parents=True, exist_ok=True)
    (root / "chm").mkdir(parents=True, exist_ok=True)
    geo = dict(driver="GTiff", width=16, height=16, crs="EPSG:32611", transform=from_origin(500000, 4000000, 1, 1))
    with rasterio.open(root / "rgb" / f"{name}.tif", "w", count=3, dtype="uint8", **geo) as d:
        d.write(np.full((3, 16, 16), 100, np.uint8))
    with rasterio.open(root / "chm" / f"{name}_CHM.tif", "w", count=1, dtype="float32", **geo) as d:
        d.write(np.full((1, 16, 16), height, np.float32))
    return root / "rgb", root / "chm"


def test_canopy_pairs_a_name_of_two_sites_entry_by_entry(tmp_path: Path) -> None:
    """Two sites each with plot_1.tif: both images were paired with the last site's CHM, silently."""
    from geodino.eval.chm import load_pairs

    a, b = _plot(tmp_path / "a", "plot_1", 5.0), _plot(tmp_path / "b", "plot_1", 20.0)
    cfg = CanopyProbeConfig()
    pairs = load_pairs([str(a[0]), str(b[0])], [str(a[1]), str(b[1])], cfg)
    assert [round(float(p["target"][p["valid"]].mean())) for p in pairs] == [5, 20]
    with pytest.raises(InputError, match=r"CHM name plot_1_CHM\.tif is in two places .* entry by entry"):
        load_pairs([str(a[0]), str(b[0])], str(tmp_path / "*" / "chm" / "*.tif"), cfg)


def test_one_glob_over_two_folders_of_one_name_is_refused_by_both_probes(tmp_path: Path) -> None:
    """A glob over urban/ and rural/ (both with 0.png) as one entry: segmentation paired both images with the last
    folder's mask, silently; canopy refused. Both now refuse in the same line, naming the entry that holds both."""
    from geodino.eval.chm import load_pairs

    for place, value in (("urban", 1), ("rural", 0)):
        _folder(tmp_path / "seg" / place, ["0"], value)
    _plot(tmp_path / "chm" / "a", "plot_1", 5.0)
    _plot(tmp_path / "chm" / "b", "plot_1", 20.0)
    seg = tmp_path / "seg" / "*"
    with pytest.raises(InputError, match=r"^mask name 0_mask\.png is in two places \(.*; one entry holds both\) and "):
        load_folder(str(seg / "img" / "*.png"), str(seg / "msk" / "*.png"), SegmentationProbeConfig(num_classes=2))
    site = tmp_path / "chm" / "*"
    with pytest.raises(
        InputError, match=r"^CHM name plot_1_CHM\.tif is in two places \(.*; one entry holds both\) and "
    ):
        load_pairs(str(site / "rgb" / "*.tif"), str(site / "chm" / "*.tif"), CanopyProbeConfig())


def test_both_probes_refuse_entries_that_do_not_line_up_in_one_line(tmp_path: Path) -> None:
    """Two image entries of one name with one target entry: the same words from segmentation and canopy, naming
    the keys as the user wrote them and both counts."""
    from geodino.eval.chm import load_pairs

    urban, rural = _folder(tmp_path / "urban", ["0"], 1), _folder(tmp_path / "rural", ["0"], 0, masks="other")
    a, b = _plot(tmp_path / "a", "plot_1", 5.0), _plot(tmp_path / "b", "plot_1", 20.0)
    (tmp_path / "b" / "chm" / "plot_1_CHM.tif").rename(tmp_path / "a" / "chm" / "plot_2_CHM.tif")
    words = (
        r"is in two places \(.*; {t} has 1 entry, {i} 2\) and {w}s are paired with images by name; list {i} and {t} "
    )
    with pytest.raises(
        InputError, match="^image name 0.png " + words.format(t="train_masks", i="train_images", w="mask")
    ):
        load_folder([str(urban[0]), str(rural[0])], str(urban[1]), SegmentationProbeConfig(num_classes=2))
    with pytest.raises(
        InputError, match="^image name plot_1.tif " + words.format(t="val_chms", i="val_images", w="CHM")
    ):
        load_pairs([str(a[0]), str(b[0])], str(a[1]), CanopyProbeConfig(), None, ("val_images", "val_chms"))
