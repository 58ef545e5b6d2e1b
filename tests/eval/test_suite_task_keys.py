"""Every ConfigError/InputError of a suite task that names a key of the task's config names it as
`tasks.<name>.<key>` (runner_inputs.task_keys_named), whether it is raised while the config is parsed, checked
against the backbone or run: a label budget too large for a class (raised in the run), a bad head and a bad layers
value (raised while checking) each come out of `geodino probe` as one line with exit code 2. Before, only the
per-class budget did (its error carried a `task_key` attribute) and `segmentation head='foo'` named no task."""

from __future__ import annotations

import pytest

from geodino.errors import ConfigError, GeoDinoError, MissingBandError
from geodino.eval.classification import ClassificationConfig
from geodino.eval.segmentation import SegmentationProbeConfig
from tests.eval.class_folder import class_folder
from tests.eval.test_segmentation import make_folder

SPEC = "arch:vit_tiny?depth=4&patch_size=8&seed=0"

SUITE = """name: keys
tasks:
  cls:
    type: classification
    data: {{name: image_folder, root: {root}, val_fraction: 0.25, test_fraction: 0.25}}
    features: {{batch_size: 64}}
    knn: {{ks: [1]}}
    train_per_class: 2
  seg:
    type: segmentation
    train_images: {img}
    train_masks: {msk}
    num_classes: 2
    head: linear
    epochs: 1
"""


@pytest.fixture
def suite(tmp_path):
    class_folder(tmp_path / "imgs", classes=("a", "b"), n=12, size=8)  # per class: 6 train, 3 val, 3 test
    img, msk = make_folder(tmp_path / "seg", n=2, size=16)
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(root=tmp_path / "imgs", img=img, msk=msk))
    return path


@pytest.mark.parametrize(
    ("override", "start"),
    [
        ("tasks.cls.train_per_class=7", "tasks.cls.train_per_class=7 is more than the 6 training images of class"),
        ("tasks.seg.head=foo", "tasks.seg.head='foo' must be one of linear"),
        ("tasks.seg.layers=5", "tasks.seg.head=linear: tasks.seg.layers=5 is a bare number"),
        ("tasks.seg.crop_size=2", "tasks.seg.crop_size=2 is too small"),
        ("tasks.cls.knn.ks=[0]", "tasks.cls.knn.ks=[0] must list positive k values"),
    ],
)
def test_geodino_probe_names_the_task_key_in_one_line(suite, tmp_path, capsys, override, start):
    from geodino.cli import main

    argv = ["probe", "-c", str(suite), "-b", SPEC, "--out", str(tmp_path / "out"), "--no-progress", override]
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("geodino: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].removeprefix("geodino: error: ").startswith(start), lines[0]


def test_the_rule_names_only_the_task_keys_and_keeps_the_error():
    from geodino.eval.runner_inputs import name_task_keys, task_keys_named

    seg, cls = SegmentationProbeConfig, ClassificationConfig
    assert name_task_keys("segmentation has no training samples; check train_images", "s", seg) == (
        "segmentation has no training samples; check train_images"  # names no key as key=...: unchanged
    )
    assert name_task_keys("tasks.s.train_images: image x not found", "s", seg) == (
        "tasks.s.train_images: image x not found"  # named already: not twice
    )
    assert name_task_keys("class_names has 1 names but num_classes=3", "s", seg) == (
        "tasks.s.class_names has 1 names but tasks.s.num_classes=3"
    )
    assert (
        name_task_keys("num_classes=3 but x has 2 classes", "c", cls)
        == "tasks.c.data.num_classes=3 but x has 2 classes"
    )
    assert name_task_keys("a band name='x' and scale=2", "c", cls) == "a band name='x' and scale=2"  # plain words
    spec = "backbone arch:vit_tiny?patch_size=8&seed=0 takes 3 bands"  # a spec's seed= is no task key
    words = "features takes normalised float input"  # a sentence starting with a plain key word: not a key
    assert name_task_keys(words, "c", cls) == words
    assert name_task_keys(spec, "c", cls) == spec
    # the error object keeps its type and fields; only its line changes
    with pytest.raises(MissingBandError) as info, task_keys_named("c", cls):
        raise MissingBandError("test_split='x' has no band", source="raster a.tif", band="B9", names=["B1"])
    assert str(info.value) == "tasks.c.data.test_split='x' has no band" and info.value.band == "B9"
    with pytest.raises(ConfigError, match=r"^tasks\.s\.head='x'"), task_keys_named("s", seg):
        raise ConfigError("segmentation head='x' must be one of linear")


def test_a_named_dataset_that_cannot_be_opened_names_its_task(tmp_path):
    """A named dataset's own errors (no folder, no root) name `tasks.<name>.data`; they named the folder only, so in
    a suite of several tasks on one dataset the task was left to guess."""
    from geodino.eval.runner import SuiteConfig, prepare_suite

    for data, start in [
        ({"name": "loveda", "root": str(tmp_path / "nope")}, "tasks.lc.data: dataset folder "),
        ({"name": "loveda", "root": ""}, "tasks.lc.data: dataset 'loveda' needs a folder: set its 'root' key"),
        ({"name": "lovedaa"}, "tasks.lc.data.name='lovedaa' is not a known dataset; did you mean 'loveda'?"),
    ]:
        cfg = SuiteConfig(progress=False, tasks={"lc": {"type": "segmentation", "data": data}})
        with pytest.raises(GeoDinoError) as info:
            prepare_suite(cfg, "tiny", tmp_path / "out")
        assert str(info.value).startswith(start) and "\n" not in str(info.value), str(info.value)
