"""kNN and logistic-regression keys no head can use are refused when the config is read, before any feature is
extracted: `knn.ks=[]` / `[0]` and `logreg.tol=-1` were refused only after every split's features were written to
the cache (minutes on a real dataset, a feature_cache left behind), and `knn.chunk_size=0` ran one test image per
similarity block without a word, as `linear.epochs=0 linear.min_iterations=0` trained one SGD step."""

from __future__ import annotations

import math

import pytest

from geodino.errors import ConfigError
from geodino.eval.classification import KNNConfig, LogRegConfig
from geodino.eval.linear import LinearConfig
from tests.eval.class_folder import class_folder


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda: KNNConfig(ks=[]), r"^knn\.ks=\[\] must list positive k values"),
        (lambda: KNNConfig(ks=[20, 0]), r"^knn\.ks=\[20, 0\] must list positive k values"),
        (lambda: KNNConfig(chunk_size=0), r"^knn\.chunk_size=0 must be >= 1"),
        (lambda: LogRegConfig(tol=-1.0), r"^logreg\.tol=-1\.0 must be >= 0 \(0 = auto\)$"),
        (lambda: LogRegConfig(tol=math.nan), r"^logreg\.tol=nan must be >= 0"),
        (
            lambda: LinearConfig(epochs=0, min_iterations=0),  # trained one SGD step and reported the head
            r"^linear\.epochs=0 and linear\.min_iterations=0 leave no training step; .* linear\.enabled=false",
        ),
    ],
)
def test_unusable_head_keys_are_refused_naming_the_key(make, said):
    with pytest.raises(ConfigError, match=said):
        make()


def test_a_disabled_knn_needs_no_k_and_the_defaults_pass():
    assert KNNConfig(enabled=False, ks=[]).ks == []
    assert LinearConfig(enabled=False, epochs=0, min_iterations=0).epochs == 0 and LinearConfig(epochs=0).epochs == 0
    assert KNNConfig().ks == [10, 20, 100, 200] and LogRegConfig().tol == 0.0


@pytest.mark.parametrize("override", ["tasks.c.knn.ks=[]", "tasks.c.logreg.tol=-1"])
def test_geodino_probe_refuses_them_before_extracting_features(tmp_path, capsys, override):
    from geodino.cli import main

    root = class_folder(tmp_path / "imgs", n=4, size=8)
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"name: s\ntasks:\n  c:\n    type: classification\n    data: {{name: image_folder, root: {root}}}")
    out = tmp_path / "out"
    assert main(["probe", "-c", str(suite), "-b", "baseline:colour", "-o", str(out), "--no-progress", override]) == 2
    err = capsys.readouterr().err
    assert err.count("geodino: error: tasks.c.") == 1 and "Traceback" not in err, err
    assert not list(out.rglob("*.safetensors")) and not (out / "c").exists()  # no features, no task folder
