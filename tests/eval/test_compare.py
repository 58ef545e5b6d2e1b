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


def test_a_bad_comparison_spec_fails_before_the_main_run(tmp_path, capsys):
    from geodino.cli import main

    data = _chips(tmp_path / "chips")
    out = tmp_path / "out"
    argv = ["probe", "-c", "configs/eval/demo.yaml", "-b", "arch:vit_tiny?depth=1&patch_size=8&seed=0"]
    argv += ["--compare", "baseline:colour?bins=x", "--out", str(out), f"tasks.demo_landcover.data.root={data}"]
    argv += ["tasks.demo_landcover.data.bands=[]", "progress=false"]
    assert main(argv) == 2
    assert "backbone spec option bins='x' must be an integer" in capsys.readouterr().err
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
