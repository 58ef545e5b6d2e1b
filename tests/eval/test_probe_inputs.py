"""The probe entry points given a spec string, a suite mapping or a loaded backbone (API audit): taken as meant, or
one ConfigError line saying why not."""

from __future__ import annotations

import pytest

from geodino.errors import ConfigError
from tests.eval.class_folder import class_folder


def _task(root):
    return {
        "type": "classification",
        "data": {"name": "image_folder", "root": str(root), "val_fraction": 0.25, "test_fraction": 0.25},
        "features": {"batch_size": 8, "layers": "four_last"},
        "knn": {"ks": [1]},
        "linear": {"lrs": [0.1], "weight_decays": [0.0], "epochs": 2, "min_iterations": 5},
    }


def test_a_probe_takes_a_spec_string(monkeypatch, tmp_path):
    import geodino.backbones
    from geodino.eval.classification import ClassificationConfig, run_classification
    from geodino.eval.datasets import DatasetConfig
    from tests.eval.tiny_backbone import TinyBackbone

    loaded = []
    monkeypatch.setattr(geodino.backbones, "load_backbone", lambda spec: loaded.append(spec) or TinyBackbone())
    root = class_folder(tmp_path / "imgs", n=6)
    data = DatasetConfig(name="image_folder", root=str(root), val_fraction=0.25, test_fraction=0.25)
    cfg = ClassificationConfig(data=data, progress=False)
    cfg.features.cache = False
    cfg.knn.ks = [1]
    metrics = run_classification("arch:vit_small?depth=1", cfg, tmp_path / "out")
    assert loaded == ["arch:vit_small?depth=1"] and "linear_top1" in metrics
    with pytest.raises(ConfigError, match=r"^backbone int lacks features, patch_size, in_chans; pass a spec string"):
        run_classification(3, cfg, tmp_path / "out2")


def test_a_suite_takes_a_mapping_and_a_loaded_backbone(tmp_path):
    from geodino.eval.runner import run_suite
    from tests.eval.tiny_backbone import TinyBackbone

    with pytest.raises(ConfigError, match=r"^the probe suite has no tasks"):
        run_suite({"tasks": {}}, "arch:vit_small?depth=1", tmp_path / "s0")
    with pytest.raises(ConfigError, match=r"^the suite config must be a SuiteConfig .* got str$"):
        run_suite("suite.yaml", "arch:vit_small?depth=1", tmp_path / "s0")  # type: ignore[arg-type]
    suite = {"progress": False, "tasks": {"folder": _task(class_folder(tmp_path / "imgs", n=6))}}
    rows = run_suite(suite, TinyBackbone(spec="tiny"), tmp_path / "s1")
    assert {r["backbone"] for r in rows} == {"tiny"} and "linear_top1" in {r["metric"] for r in rows}
    # a task with its own bands needs the backbone loaded again from its spec: only a spec string allows that
    suite["tasks"]["folder"]["backbone_bands"] = ["R", "G", "B"]
    with pytest.raises(ConfigError, match=r"^task folder set backbone_bands/.* \(this one's is 'tiny'\)"):
        run_suite(suite, TinyBackbone(spec="tiny"), tmp_path / "s2")
