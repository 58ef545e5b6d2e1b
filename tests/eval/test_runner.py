"""The probe runner: a suite YAML -> results.json / results.md, determinism, the CLI and its one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import geodino.cli
from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.eval import runner
from geodino.eval.runner import SuiteConfig, read_results, run_suite
from tests.eval.class_folder import class_folder
from tests.eval.tiny_backbone import TinyBackbone

SUITE = """
name: tiny_suite
tasks:
  folder_knn_linear:
    type: classification
    data: {{name: image_folder, root: {root}, val_fraction: 0.25, test_fraction: 0.25}}
    features: {{batch_size: 8, layers: four_last}}
    knn: {{ks: [1, 3]}}
    linear: {{lrs: [0.01, 0.1], weight_decays: [0.0], epochs: 5, min_iterations: 20}}
"""


@pytest.fixture
def tiny_backbone(monkeypatch):
    loaded = []

    def fake_load(spec, bands, sensor, device):
        loaded.append((spec, bands, sensor, device))
        return TinyBackbone(spec="tiny")

    monkeypatch.setattr(runner, "load_probe_backbone", fake_load)
    return loaded


def _suite(tmp_path):
    class_folder(tmp_path / "imgs")
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(root=tmp_path / "imgs"))
    return path


def test_run_suite_writes_results_table_and_is_deterministic(tmp_path, tiny_backbone):
    cfg = load_config(SuiteConfig, _suite(tmp_path), ["progress=false"])
    rows = run_suite(cfg, "tiny", tmp_path / "out")
    assert tiny_backbone == [("tiny", [], "", "cpu")]
    metrics = {r["metric"]: r["value"] for r in rows}
    assert metrics["knn_top1@k1"] == 1.0 and metrics["linear_top1"] == 1.0
    assert {r["task"] for r in rows} == {"folder_knn_linear"} and {r["dataset"] for r in rows} == {"image_folder:imgs"}
    res = read_results(tmp_path / "out")
    assert res["backbone"] == "tiny" and res["rows"] == json.loads(json.dumps(rows))
    assert res["configs"]["folder_knn_linear"]["type"] == "classification"
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| task | dataset | metric | value | backbone | config |" in md
    h = rows[0]["config_hash"]
    assert f"| folder_knn_linear | image_folder:imgs | linear_top1 | 1.0000 | `tiny` | `{h}` |" in md
    assert (tmp_path / "out" / "folder_knn_linear" / "confusion_linear.png").is_file()
    assert list((tmp_path / "out" / "feature_cache").glob("*.safetensors"))
    # same seed, fresh output (and fresh cache): identical numbers and hash
    cfg2 = load_config(SuiteConfig, _suite(tmp_path), ["progress=false", f"cache_dir={tmp_path / 'c2'}"])
    rows2 = run_suite(cfg2, "tiny", tmp_path / "out2")
    assert [(r["metric"], r["value"], r["config_hash"]) for r in rows2] == [
        (r["metric"], r["value"], r["config_hash"]) for r in rows
    ]


def test_cli_probe_runs_and_bad_input_exits_2(tmp_path, tiny_backbone, monkeypatch, capsys):
    monkeypatch.setattr(geodino.cli, "COMMAND_MODULES", ("geodino.eval.commands",))
    suite = _suite(tmp_path)
    out = tmp_path / "cli_out"
    code = geodino.cli.main(["probe", "--config", str(suite), "--backbone", "tiny", "--out", str(out), "progress=0"])
    assert code == 0 and (out / "results.md").is_file()
    assert "linear_top1" in capsys.readouterr().out
    # missing dataset folder: one line naming it and datasets/README.md, exit 2
    missing = tmp_path / "no_such_folder"
    code = geodino.cli.main(["probe", "-c", str(suite), "-b", "tiny", "--out", str(tmp_path / "o2"),
                             f"tasks.folder_knn_linear.data.root={missing}", "progress=0"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(
        f"geodino: error: tasks.folder_knn_linear.data: dataset folder {missing} for 'image_folder' not"
    )
    assert "datasets/README.md" in err
    # config num_classes disagrees with the data
    code = geodino.cli.main(["probe", "-c", str(suite), "-b", "tiny", "--out", str(tmp_path / "o3"),
                             "tasks.folder_knn_linear.data.num_classes=5", "progress=0"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "num_classes=5 but image_folder" in err and len(err.splitlines()) == 1
    # a typo in a task key names the closest valid key
    code = geodino.cli.main(["probe", "-c", str(suite), "-b", "tiny", "--out", str(tmp_path / "o4"),
                             "tasks.folder_knn_linear.linear.epoch=3"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "unknown config key 'linear.epoch' in tasks.folder_knn_linear" in err
    assert "did you mean 'linear.epochs'" in err


def test_suite_errors(tmp_path, tiny_backbone):
    with pytest.raises(ConfigError, match=r"no backbone: pass --backbone SPEC \(backbone= in Python\)"):
        run_suite(SuiteConfig(tasks={"a": {"type": "classification"}}), None, tmp_path)
    with pytest.raises(ConfigError, match="the probe suite has no tasks"):
        run_suite(SuiteConfig(), "tiny", tmp_path)
    # the key a suite writes and the closest type (the task's name and a bare "type" were all it said)
    with pytest.raises(
        ConfigError, match=r"^tasks\.a\.type='segmentaton' is not a task type; did you mean 'segmentation'"
    ):
        run_suite(SuiteConfig(tasks={"a": {"type": "segmentaton"}}), "tiny", tmp_path)
    with pytest.raises(ConfigError, match=r"^tasks\.a\.type='knn' is not a task type; choose one of classification, "):
        run_suite(SuiteConfig(tasks={"a": {"type": "knn"}}), "tiny", tmp_path)
    with pytest.raises(ConfigError, match=r"^task 'a' needs a type: set tasks\.a\.type to one of classification, "):
        run_suite(SuiteConfig(tasks={"a": {"knn": {}}}), "tiny", tmp_path)
    with pytest.raises(ConfigError, match="only='b' is not a task of this suite"):
        run_suite(SuiteConfig(tasks={"a": {"type": "classification"}}, only=["b"]), "tiny", tmp_path)


def test_shipped_suite_configs_parse_into_their_task_schemas():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "configs" / "eval"
    cfg = load_config(SuiteConfig, root / "all.yaml")
    assert list(cfg.tasks) == ["eurosat_knn_linear", "loveda_linear", "loveda_upernet", "canopy_neon_dpt",
                               "vhr10_fasterrcnn"]  # fmt: skip
    parsed = runner.parse_tasks(cfg, Path("out"))
    types = {n: (type(t.cfg).__name__, t.type, t.data.name if t.data else None) for n, t in parsed.items()}
    assert types["eurosat_knn_linear"] == ("ClassificationConfig", "classification", None)
    assert types["loveda_upernet"][1] == "segmentation" and parsed["loveda_upernet"].cfg.head == "upernet"
    det = parsed["vhr10_fasterrcnn"]
    assert det.type == "detection" and (det.data or det.cfg.data).name == "vhr10"
    assert types["canopy_neon_dpt"][1] == "canopy"


def test_adapter_data_is_passed_to_entry_points_without_a_data_key(tmp_path):
    from geodino.eval.datasets import DatasetConfig
    from tests.eval.test_datasets import make_vhr10

    make_vhr10(tmp_path / "vhr")
    seen = {}

    def run_fake(backbone, cfg, out_dir, *, train_data=None, val_data=None, class_names=None):
        seen.update(n_train=len(train_data), n_val=len(val_data), classes=class_names, box=train_data[0]["boxes"])
        return {"mAP": 0.5}

    data = DatasetConfig(name="vhr10", root=str(tmp_path / "vhr"))
    assert runner._call_task(run_fake, None, None, tmp_path, data) == {"mAP": 0.5}
    assert (seen["n_train"], seen["n_val"]) == (3, 1) and seen["classes"][0] == "airplane"
    assert seen["box"].shape == (1, 4)
    with pytest.raises(ConfigError, match="has a 'data' key but run_plain takes no dataset"):

        def run_plain(backbone, cfg, out_dir):
            return {}

        runner._call_task(run_plain, None, None, tmp_path, data)


def test_real_vit_tiny_backbone_through_the_cli(tmp_path, monkeypatch, capsys):
    """No stand-in: `arch:vit_tiny` from geodino.backbones, frozen, through `geodino probe`."""
    monkeypatch.setattr(geodino.cli, "COMMAND_MODULES", ("geodino.eval.commands",))
    suite = _suite(tmp_path)
    out = tmp_path / "vit"
    spec = "arch:vit_tiny?patch_size=8&seed=0"
    code = geodino.cli.main(["probe", "-c", str(suite), "-b", spec, "--out", str(out), "progress=0"])
    assert code == 0
    res = read_results(out)
    assert res["backbone"] == spec and len(res["fingerprint"]) == 64
    metrics = {r["metric"]: r["value"] for r in res["rows"]}
    assert {"knn_top1@k1", "knn_top1@k3", "linear_top1", "linear_macro_f1"} <= set(metrics)
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert len(list((out / "feature_cache").glob("*.safetensors"))) == 3
    # the same backbone on 4-band data: one line that suggests band adaptation
    for i, c in enumerate(("dark", "bright")):
        for j in range(4):
            import rasterio
            from rasterio.transform import from_origin

            (tmp_path / "ms" / c).mkdir(parents=True, exist_ok=True)
            arr = np.full((4, 16, 16), 1000 + 3000 * i + j, dtype=np.uint16)
            with rasterio.open(tmp_path / "ms" / c / f"{j}.tif", "w", driver="GTiff", width=16, height=16, count=4,
                               dtype="uint16", transform=from_origin(0, 16, 1, 1)) as dst:  # fmt: skip
                dst.write(arr)
    capsys.readouterr()
    code = geodino.cli.main(["probe", "-c", str(suite), "-b", spec, "--out", str(tmp_path / "ms_out"), "progress=0",
                             f"tasks.folder_knn_linear.data.root={tmp_path / 'ms'}"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"backbone {spec} takes 3 bands but image_folder has 4" in err
    assert "adapt the backbone's patch embedding to the data's bands (suite key backbone_bands=[b1,b2,b3,b4]" in err


def test_per_task_backbone_bands_load_one_backbone_per_band_set(tmp_path, tiny_backbone):
    class_folder(tmp_path / "imgs")
    task = {"type": "classification", "data": {"name": "image_folder", "root": str(tmp_path / "imgs")},
            "linear": {"enabled": False}, "knn": {"ks": [1]}}  # fmt: skip
    cfg = SuiteConfig(
        backbone_bands=["R", "G", "B"],
        progress=False,
        tasks={"a": dict(task), "b": {**task, "backbone_bands": ["B04", "B03", "B02"]}, "c": dict(task)},
    )
    rows = run_suite(cfg, "tiny", tmp_path / "out")
    assert [call[1] for call in tiny_backbone] == [["R", "G", "B"], ["B04", "B03", "B02"]]
    hashes = {r["task"]: r["config_hash"] for r in rows}
    assert hashes["a"] == hashes["c"] != hashes["b"]  # same settings, same hash; band adaptation changes it
    assert read_results(tmp_path / "out")["configs"]["b"]["backbone_bands"] == ["B04", "B03", "B02"]


def test_run_suite_takes_backbone_as_the_other_entries_name_it(monkeypatch, tmp_path) -> None:
    """`run_suite(cfg, backbone=...)` was a TypeError (only `backbone_spec`); both at once is one line."""
    import pytest

    from geodino.errors import ConfigError
    from geodino.eval import runner

    got = []
    monkeypatch.setattr(runner, "prepare_suite", lambda cfg, spec, out, skip_unfit: got.append(spec) or "prepared")
    monkeypatch.setattr(runner, "run_prepared", lambda suite: [{"suite": suite}])
    assert runner.run_suite({}, backbone="arch:vit_tiny", out_dir=tmp_path / "o") == [{"suite": "prepared"}]
    assert runner.run_suite({}, "baseline:colour", tmp_path / "o") == [{"suite": "prepared"}]
    assert got == ["arch:vit_tiny", "baseline:colour"]
    with pytest.raises(ConfigError, match=r"^pass the backbone once: backbone= or backbone_spec="):
        runner.run_suite({}, "a", tmp_path / "o", backbone="b")
