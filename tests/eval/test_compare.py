"""`geodino probe --compare`: several backbones on one suite, one table with each one's difference to the main."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geodino.eval.compare import comparison_markdown, comparison_rows, slug


def test_slugs_name_folders_by_index_and_spec():
    assert slug("baseline:colour?patch_size=8", 1) == "1_baseline_colour_patch_size_8"
    assert slug("/runs/a b/teacher.pth", 2) == "2_teacher.pth"
    assert slug("arch:vit_small?seed=0", 3) == "3_arch_vit_small_seed_0"
    assert slug("???", 4) == "4_backbone"


def test_the_table_has_a_column_per_backbone_and_differences_to_the_main():
    main = [{"task": "t", "metric": "knn", "value": 0.9}, {"task": "t", "metric": "MAE", "value": 2.0}]
    colour = [{"task": "t", "metric": "knn", "value": 0.85}, {"task": "t", "metric": "extra", "value": 1.0}]
    runs = [("main.pth", main), ("baseline:colour", colour)]
    rows = comparison_rows(runs)
    assert [(r["task"], r["metric"]) for r in rows] == [("t", "knn"), ("t", "MAE"), ("t", "extra")]
    assert rows[1]["values"] == {"main.pth": 2.0, "baseline:colour": None}
    md = comparison_markdown(runs, "suite")
    assert "| task | metric | `main.pth` | `baseline:colour` | Δ |" in md
    assert "| t | knn | 0.9000 | 0.8500 | -0.0500 |" in md
    assert "| t | MAE | 2.0000 | - | - |" in md and "| t | extra | - | 1.0000 | - |" in md


def _chips(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, level in (("dark", 50), ("bright", 190)):
            (root / split / c).mkdir(parents=True)
            for i in range(3):
                arr = np.clip(rng.normal(level, 10, (16, 16, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(arr).save(root / split / c / f"{i}.png")
    return root


def test_cli_runs_each_backbone_and_writes_the_comparison(tmp_path, capsys):
    from geodino.cli import main

    data = _chips(tmp_path / "chips")
    common = [f"tasks.demo_landcover.data.root={data}", "tasks.demo_landcover.data.bands=[]"]
    common += [
        "tasks.demo_landcover.data.scale=0.00392156862745098",
        "progress=false",
        "tasks.demo_landcover.knn.ks=[3]",
        "tasks.demo_landcover.features.layers=last",  # the 1-block ViT: no short-backbone warning
    ]
    out = tmp_path / "out"
    argv = ["probe", "-c", "configs/eval/demo.yaml", "-b", "arch:vit_tiny?depth=1&patch_size=8&seed=0"]
    argv += ["--compare", "baseline:colour?patch_size=8", "--out", str(out), *common]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert (
        "| task | metric | `arch:vit_tiny?depth=1&patch_size=8&seed=0` | `baseline:colour?patch_size=8` | Δ |"
        in printed
    )
    run = out / "compare" / "1_baseline_colour_patch_size_8"
    own = {r["metric"]: r["value"] for r in json.loads((run / "results.json").read_text())["rows"]}
    main_rows = {r["metric"]: r["value"] for r in json.loads((out / "results.json").read_text())["rows"]}
    assert own["knn_top1"] == 1.0  # dark and bright chips: colour separates them
    table = json.loads((out / "comparison.json").read_text())
    assert table["backbones"] == ["arch:vit_tiny?depth=1&patch_size=8&seed=0", "baseline:colour?patch_size=8"]
    knn = next(r for r in table["rows"] if r["metric"] == "knn_top1")
    assert knn["values"] == {table["backbones"][0]: main_rows["knn_top1"], table["backbones"][1]: 1.0}
    assert (out / "comparison.md").read_text() in printed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("baseline:colour?bins=x", "backbone spec option bins='x' must be an integer"),
        ("arch:vit_tiny?dpeth=1", "1 unknown backbone option for vit_tiny: dpeth (did you mean depth?)"),
        ("arch:vit_nope", "vit_nope"),
        ("no/such/teacher.pth", "backbone checkpoint no/such/teacher.pth not found"),
    ],
)
def test_a_bad_comparison_spec_fails_before_the_main_run(tmp_path, capsys, spec, message):
    from geodino.cli import main

    data = _chips(tmp_path / "chips")
    out = tmp_path / "out"
    argv = ["probe", "-c", "configs/eval/demo.yaml", "-b", "arch:vit_tiny?depth=1&patch_size=8&seed=0"]
    argv += ["--compare", spec, "--out", str(out), f"tasks.demo_landcover.data.root={data}"]
    argv += ["tasks.demo_landcover.data.bands=[]", "progress=false"]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (out / "results.json").exists() and not (out / "comparison.md").exists()


def test_a_spec_named_twice_is_refused_before_any_run(tmp_path):
    from geodino.config import load_config
    from geodino.errors import ConfigError
    from geodino.eval.compare import run_comparison
    from geodino.eval.runner import SuiteConfig

    cfg = load_config(SuiteConfig, "configs/eval/demo.yaml", [f"tasks.demo_landcover.data.root={tmp_path}"])
    with pytest.raises(ConfigError, match="--compare names 'baseline:colour' twice"):
        run_comparison(cfg, "arch:vit_tiny?depth=1", ["baseline:colour", "baseline:colour"], tmp_path / "o")
    assert not (tmp_path / "o").exists()


def _dense_suite(tmp_path):
    """A suite of a scene classification, a linear and an UPerNet segmentation task on tiny folders."""
    from tests.eval.test_segmentation import make_folder

    img, msk = make_folder(tmp_path / "seg", n=3, size=32)
    chips = _chips(tmp_path / "chips")
    seg = {"type": "segmentation", "train_images": str(img), "train_masks": str(msk), "num_classes": 2,
           "crop_size": 32, "epochs": 1, "min_steps": 1, "batch_size": 4, "plots": 0, "channels": 16}  # fmt: skip
    suite = {
        "name": "mixed",
        "tasks": {
            "scenes": {
                "type": "classification",
                "data": {"name": "image_folder", "root": str(chips), "bands": []},
                "knn": {"ks": [3]},
                "linear": {"enabled": False},
                "plots": False,
            },
            "seg_linear": {**seg, "head": "linear"},
            "seg_upernet": {**seg, "head": "upernet"},
        },
    }
    path = tmp_path / "suite.yaml"
    path.write_text(json.dumps(suite))  # JSON is YAML
    return path


VIT4 = "arch:vit_tiny?depth=4&patch_size=8&seed=0"
COLOUR = "baseline:colour?patch_size=8"


def test_a_comparison_backbone_skips_the_tasks_it_cannot_run_and_the_table_says_why(tmp_path, capsys):
    from geodino.cli import main

    out = tmp_path / "out"
    argv = ["probe", "-c", str(_dense_suite(tmp_path)), "-b", VIT4, "--compare", COLOUR, "--out", str(out)]
    with pytest.warns(UserWarning) as caught:
        assert main([*argv, "progress=false"]) == 0
    warned = [str(w.message) for w in caught if "skipping task" in str(w.message)]
    assert warned == [
        f"skipping task seg_upernet on backbone {COLOUR}: segmentation head=upernet needs four layers; the backbone "
        "has 1 block"
    ]
    main_metrics = {(r["task"], r["metric"]) for r in json.loads((out / "results.json").read_text())["rows"]}
    assert ("seg_upernet", "mIoU") in main_metrics  # the main backbone ran every task
    md = (out / "comparison.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| seg_upernet | mIoU |"))
    assert row.endswith("| - | - |")
    assert (
        f"- `{COLOUR}` skipped seg_upernet: segmentation head=upernet needs four layers; the backbone has 1 block" in md
    )
    assert "| seg_linear | mIoU |" in md and "| scenes | knn_top1 |" in md
    table = json.loads((out / "comparison.json").read_text())
    assert list(table["skipped"]) == [COLOUR] and list(table["skipped"][COLOUR]) == ["seg_upernet"]
    colour_run = json.loads((out / "compare" / "1_baseline_colour_patch_size_8" / "results.json").read_text())
    assert {r["task"] for r in colour_run["rows"]} == {"scenes", "seg_linear"}


def test_a_main_backbone_that_cannot_run_a_task_stops_before_any_task_runs(tmp_path, capsys):
    from geodino.cli import main

    out = tmp_path / "out"
    argv = ["probe", "-c", str(_dense_suite(tmp_path)), "-b", COLOUR, "--out", str(out), "progress=false"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"geodino: error: backbone {COLOUR} has 1 block, too few for task seg_upernet (segmentation head=upernet "
        "needs four layers); set tasks.seg_upernet.head=linear, leave them out with only=[scenes,seg_linear], or "
        "use a backbone with at least 4 blocks"
    )
    assert not (out / "scenes").exists() and not (out / "results.json").exists()  # nothing ran
    # as the main backbone of a comparison: stopped before the comparisons run
    argv = ["probe", "-c", str(_dense_suite(tmp_path / "b")), "-b", COLOUR, "--compare", VIT4, "--out", str(out)]
    assert main([*argv, "progress=false"]) == 2
    assert "too few for task seg_upernet" in capsys.readouterr().err
    assert not (out / "compare").exists() and not (out / "comparison.md").exists()


def test_the_four_layer_message_names_the_probe_and_the_backbone(tmp_path):
    from geodino.backbones import load_backbone
    from geodino.errors import ConfigError
    from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
    from tests.eval.test_segmentation import make_folder

    img, msk = make_folder(tmp_path, n=2, size=32)
    cfg = SegmentationProbeConfig(train_images=str(img), train_masks=str(msk), num_classes=2, head="upernet", plots=0)
    with pytest.raises(ConfigError, match=r"^segmentation head=upernet on backbone baseline:colour\?patch_size=8: "):
        run_segmentation(load_backbone(COLOUR), cfg, tmp_path / "out")


def test_bookkeeping_values_are_listed_apart_and_never_differenced():
    main = [{"task": "c", "metric": "MAE", "value": 3.0}, {"task": "c", "metric": "n_pixels", "value": 500.0},
            {"task": "c", "metric": "train_loss", "value": 2.0}]  # fmt: skip
    other = [{"task": "c", "metric": "MAE", "value": 4.0}, {"task": "c", "metric": "n_pixels", "value": 500.0},
             {"task": "c", "metric": "train_loss", "value": 5.0}]  # fmt: skip
    runs = [("main", main), ("colour", other)]
    assert [r["kind"] for r in comparison_rows(runs)] == ["score", "info", "info"]
    md = comparison_markdown(runs, "s")
    assert "| c | MAE | 3.0000 | 4.0000 | +1.0000 |" in md
    assert "| c | n_pixels | 500 | 500 |\n" in md and "| c | train_loss | 2.0000 | 5.0000 |\n" in md
    assert "+3.0000" not in md and "+0.0000" not in md  # no difference column for bookkeeping


def test_results_mark_bookkeeping_rows_and_progress_false_silences_the_dense_bars(tmp_path, capsys):
    from geodino.cli import main

    out = tmp_path / "out"
    argv = ["probe", "-c", str(_dense_suite(tmp_path)), "-b", VIT4, "--out", str(out), "only=[seg_linear]"]
    assert main([*argv, "progress=false"]) == 0
    err = capsys.readouterr().err
    assert "segmentation linear" not in err and "it/s" not in err  # no per-epoch bar
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert {r["metric"]: r["kind"] for r in rows}["train_loss"] == "info"
    assert {r["metric"]: r["kind"] for r in rows}["mIoU"] == "score"
    md = (out / "results.md").read_text()
    scores, details = md.split("Run details")
    assert "| mIoU |" in scores and "train_loss" not in scores and "| train_loss |" in details


def test_each_backbone_is_loaded_once_and_alone(tmp_path, monkeypatch):
    """Each backbone is loaded once, run and released before the next loads: the main one first (its check and its
    run share one load), then the comparisons (peak memory: one backbone, not main plus one)."""
    import weakref

    import geodino.eval.runner as runner
    from geodino.config import load_config
    from geodino.eval.compare import run_comparison
    from geodino.eval.runner import SuiteConfig

    loaded: list[weakref.ref] = []
    alive_at_load: list[tuple[str, list[str]]] = []
    load = runner.load_probe_backbone

    def recording_load(spec, *args, **kwargs):
        alive_at_load.append((spec, [b.spec for r in loaded if (b := r()) is not None]))
        backbone = load(spec, *args, **kwargs)
        loaded.append(weakref.ref(backbone))
        return backbone

    monkeypatch.setattr(runner, "load_probe_backbone", recording_load)
    data = _chips(tmp_path / "chips")
    overrides = [f"tasks.demo_landcover.data.root={data}", "tasks.demo_landcover.data.bands=[]", "progress=false"]
    overrides += ["tasks.demo_landcover.data.scale=0.00392156862745098", "tasks.demo_landcover.knn.ks=[3]"]
    overrides += ["tasks.demo_landcover.features.layers=last"]  # the 1-block ViT: no short-backbone warning
    cfg = load_config(SuiteConfig, "configs/eval/demo.yaml", overrides)
    main, other = "arch:vit_tiny?depth=1&patch_size=8&seed=0", "arch:vit_tiny?depth=1&patch_size=8&seed=1"
    run_comparison(cfg, main, [COLOUR, other], tmp_path / "out")
    assert alive_at_load == [(main, []), (COLOUR, []), (other, [])]  # one load each, nothing else alive
    assert all(r() is None for r in loaded)  # nothing kept once the comparison is written
    table = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert table["backbones"] == [main, COLOUR, other]
    assert all(None not in r["values"].values() for r in table["rows"])


@pytest.mark.parametrize("progress", [True, False])
def test_each_run_of_a_comparison_is_announced_with_its_backbone_and_folder(tmp_path, monkeypatch, capsys, progress):
    """Each backbone's run prints the same per-task lines (`image_folder/train: path ...`): a line before each run
    says which backbone and folder the lines that follow belong to (with the progress output, as they are)."""
    import sys

    import geodino.eval.runner as runner
    from geodino.eval.compare import run_comparison

    order: list[str] = []

    def fake_prepare(cfg, spec, out, **kw):
        return spec

    def fake_run_prepared(spec):
        order.append(f"run {spec}")
        print(f"image_folder/train: path eager ({spec})", file=sys.stderr)
        return [{"task": "t", "metric": "knn_top1", "value": 0.5}]

    def fake_run_suite(cfg, spec, out, **kw):
        return fake_run_prepared(spec)

    monkeypatch.setattr(runner, "prepare_suite", fake_prepare)
    monkeypatch.setattr(runner, "run_prepared", fake_run_prepared)
    monkeypatch.setattr(runner, "run_suite", fake_run_suite)
    monkeypatch.setattr(runner, "read_results", lambda folder: {})
    monkeypatch.setattr(runner, "release_backbones", lambda *a: None)
    cfg = type("Cfg", (), {"backbone": None, "name": "demo", "seed": 0, "progress": progress})()
    other = "arch:vit_tiny?depth=1&seed=1"
    out = tmp_path / "out"
    run_comparison(cfg, VIT4, [COLOUR, other], out)
    err = capsys.readouterr().err.splitlines()
    heads = [
        f"probe: main backbone {VIT4} -> {out}",
        f"probe: comparison 1/2 {COLOUR} -> {out / 'compare' / '1_baseline_colour_patch_size_8'}",
        f"probe: comparison 2/2 {other} -> {out / 'compare' / '2_arch_vit_tiny_depth_1_seed_1'}",
    ]
    blocks = [f"image_folder/train: path eager ({s})" for s in (VIT4, COLOUR, other)]
    if progress:  # each announcement comes right before its backbone's lines
        assert err == [line for pair in zip(heads, blocks, strict=True) for line in pair]
    else:
        assert err == blocks
