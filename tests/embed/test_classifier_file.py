"""`embed classify` models are safetensors files (arrays + JSON: loading one runs no code): a model saved that way
predicts exactly what the same fitted classifier pickled the old way (joblib) does, for logistic regression and kNN,
down to the class and confidence bands of the map; an older geodino's `.joblib` still loads with one warning line
and is re-saved by `--save-model`; a pickle under any other name is never unpickled; a damaged model, or one of
another kind, is one line."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from geodino import cli
from geodino.embed.classifier_file import save_model
from geodino.embed.classifier_model import PICKLE_KIND, _identity, load_model
from geodino.embed.classify import build_classifier, classify_map
from geodino.embed.writers import EmbeddingReader
from geodino.errors import InputError
from tests.embed.test_classify import feature_raster, stripes

NOISE = 1.5  # stripes that overlap a little: confidences below 100 %, and some cells of another class


@pytest.fixture(scope="module")
def raster(tmp_path_factory) -> Path:
    return feature_raster(tmp_path_factory.mktemp("clf_file") / "f.tif", stripes(noise=NOISE))


def _bundle(raster: Path, method: str) -> dict:
    """A bundle as `classify._fit` makes it, around a classifier fitted on a few cells of each stripe."""
    feats = stripes(noise=NOISE)
    x = np.concatenate([feats[:, 3 * k + 5, 15 * k : 15 * k + 12].T for k in range(3)])
    y = np.repeat([f"class_{k}" for k in range(3)], 12)
    with EmbeddingReader(raster) as rd:
        ident = _identity(rd)
    return {
        "kind": PICKLE_KIND,
        "classifier": build_classifier(method, neighbors=3, n_train=len(y), seed=0).fit(x, y),
        "classes": ["class_0", "class_1", "class_2"],
        "codes": {"class_0": 0, "class_1": 1, "class_2": 2},
        "column": "landcover",
        "method": method,
        "backbone": ident,
        "fitted_on": {"features": str(raster), "labels": "lab.gpkg"},
        "cv": {"skipped": "not run"},
        "sklearn_version": "1.x",
    }


def _both(tmp_path: Path, raster: Path, method: str) -> tuple[Path, Path, dict]:
    """The same fitted bundle pickled the old way and saved the new way."""
    import joblib

    bundle = _bundle(raster, method)
    old, new = tmp_path / "old.model.joblib", tmp_path / "new.model.safetensors"
    joblib.dump(bundle, old)
    save_model(bundle, new)
    return old, new, bundle


@pytest.mark.parametrize("method", ["logreg", "knn"])
def test_a_safetensors_model_predicts_what_the_pickle_did(tmp_path, raster, method):
    import rasterio

    old, new, bundle = _both(tmp_path, raster, method)
    a, b = load_model(old, warn=False), load_model(new)
    x = stripes(seed=3).reshape(8, -1).T  # other cells than the fit's
    x = x[np.isfinite(x).all(axis=1)]
    assert np.array_equal(a["classifier"].predict(x), b["classifier"].predict(x))
    assert np.array_equal(a["classifier"].predict_proba(x), b["classifier"].predict_proba(x))  # bit for bit
    assert a["classifier"][-1].get_params() == b["classifier"][-1].get_params()
    assert list(b["classifier"].classes_) == bundle["classes"]
    assert {k: v for k, v in b.items() if k not in ("classifier", "kind")} == {
        k: v for k, v in bundle.items() if k not in ("classifier", "kind")
    }
    # the map of each: class band and confidence band equal
    with pytest.warns(UserWarning, match="is a pickle"):
        classify_map(raster, None, tmp_path / "a.tif", model=old)
    classify_map(raster, None, tmp_path / "b.tif", model=new)
    with rasterio.open(tmp_path / "a.tif") as da, rasterio.open(tmp_path / "b.tif") as db:
        assert np.array_equal(da.read(), db.read())
        assert set(np.unique(da.read(1))) == {0, 1, 2, 255} and len(np.unique(da.read(2))) > 5  # classes, confidences
    data = new.read_bytes()  # a JSON header of numeric arrays, then their bytes: nothing to run
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} <= {"F64", "F32", "I64", "I32"}
    assert json.loads(header["__metadata__"]["geodino"])["kind"] == "geodino.embed.classifier/2"


def test_an_old_pickle_warns_once_and_is_resaved_by_save_model(tmp_path, raster, capsys, monkeypatch):
    import rasterio

    old, _, _ = _both(tmp_path, raster, "knn")
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    conv = tmp_path / "conv.model.safetensors"
    argv = ["embed", "classify", str(raster), "--model", str(old), "--out", str(tmp_path / "a.tif")]
    with pytest.warns(UserWarning) as caught:  # the CLI shows each as one line "geodino: warning: ..."
        assert cli.main([*argv, "--save-model", str(conv)]) == 0
    (said,) = [str(w.message) for w in caught]
    assert "is a pickle" in said and "load only files you trust" in said and f"this run saved it as {conv}" in said
    assert f"model {old} (saved as {conv})" in capsys.readouterr().out
    # the re-saved model: no warning, the same map
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cli.main([*argv[:4], str(conv), "--out", str(tmp_path / "b.tif")]) == 0
    assert not caught
    with rasterio.open(tmp_path / "a.tif") as da, rasterio.open(tmp_path / "b.tif") as db:
        assert np.array_equal(da.read(), db.read())
    # without --save-model the warning names the re-save; a safetensors --model is not re-saved (it is one already)
    with pytest.warns(UserWarning, match=f"with --save-model {tmp_path / 'old.model.safetensors'} on this run"):
        assert cli.main([*argv[:6], str(tmp_path / "c.tif")]) == 0
    assert cli.main([*argv[:4], str(conv), "--out", str(tmp_path / "d.tif"), "--save-model", "x.safetensors"]) == 2
    assert "saves a fitted model, and --model" in capsys.readouterr().err


class _Marker:
    """A pickle that, unpickled, writes a file: what loading someone else's pickle may do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (self.path, "ran"))


def test_a_pickle_under_another_name_is_never_unpickled(tmp_path, raster):
    import pickle

    ran = tmp_path / "ran.txt"
    (tmp_path / "m.model.safetensors").write_bytes(pickle.dumps({"kind": PICKLE_KIND, "x": _Marker(ran)}))
    with pytest.raises(InputError, match="is not a model written by `geodino embed classify`"):
        classify_map(raster, None, tmp_path / "m.tif", model=tmp_path / "m.model.safetensors")
    assert not ran.exists() and not (tmp_path / "m.tif").exists()


def _rewrite(src: Path, dst: Path, *, meta=None, tensors=None) -> Path:
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(src), "np") as f:
        m, t = json.loads(f.metadata()["geodino"]), {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors(t) if tensors else t, str(dst), metadata={"geodino": json.dumps(meta(m) if meta else m)})
    return dst


def test_damaged_or_other_kinds_of_model_are_one_line(tmp_path, raster, capsys):
    from tests.test_bad_inputs import one_line_exit_2

    _, new, _ = _both(tmp_path, raster, "logreg")
    cases = {
        "v3": (
            dict(meta=lambda m: m | {"kind": "geodino.embed.classifier/3"}),
            "is a geodino.embed.classifier/3 model, and this geodino reads geodino.embed.classifier/2",
        ),
        "nocoef": (dict(tensors=lambda t: {k: v for k, v in t.items() if k != "logreg.coef_"}), "is damaged"),
        "shape": (dict(tensors=lambda t: t | {"logreg.coef_": t["logreg.coef_"][:, :5]}), "is damaged (arrays of"),
    }
    for name, (change, said) in cases.items():
        path = _rewrite(new, tmp_path / f"{name}.model.safetensors", **change)
        with pytest.raises(InputError, match=r"^model .*" + said.replace("(", r"\(")):
            load_model(path)
    cut = tmp_path / "cut.model.safetensors"
    cut.write_bytes(new.read_bytes()[:-40])  # cut short after its header
    line = one_line_exit_2(capsys, tmp_path, "embed", "classify", raster, "--model", cut, "--out", tmp_path / "c.tif")
    assert f"model {cut} is damaged" in line and f"geodino embed classify {raster} lab.gpkg --column landcover" in line


def test_an_old_identity_is_completed_in_either_format(tmp_path):
    """A pickle from before final_norm/l2_normalize were recorded, re-saved against a raster as old as it, keeps the
    identity it had: the safetensors copy is completed from the raster it was fitted on as the pickle was."""
    from tests.embed.test_classify import FLOAT, _old_model

    fitted = feature_raster(tmp_path / "fitted.tif", stripes(), tags=FLOAT)
    old = _old_model(tmp_path, fitted)
    conv = tmp_path / "conv.model.safetensors"
    as_old = feature_raster(tmp_path / "g.tif", stripes(seed=2))  # records neither: compared as it is
    with pytest.warns(UserWarning, match="is a pickle"):
        classify_map(as_old, None, tmp_path / "a.tif", model=old, save_model=conv)
    assert "final_norm" not in load_model(conv)["backbone"]
    other = feature_raster(tmp_path / "other.tif", stripes(seed=1), tags=FLOAT)
    for model in (old, conv):
        with pytest.warns(UserWarning) as caught:
            m = classify_map(other, None, tmp_path / f"{model.suffix[1:]}.tif", model=model)
        said = [str(w.message) for w in caught]
        assert any(f"model {model} predates recorded normalisation; using final_norm=true" in s for s in said)
        assert any("is a pickle" in s for s in said) == (model == old)
        assert m["classes"] == ["class_0", "class_1", "class_2"]


def test_an_old_pickle_that_cannot_be_resaved_is_refused_before_the_map(tmp_path, raster):
    """A hand-made pickle (a bare LogisticRegression, no pipeline): applied as before, but a re-save is one line
    before anything is written, not a traceback after the map."""
    import joblib

    bundle = _bundle(raster, "logreg")
    bundle["classifier"] = bundle["classifier"][-1]
    joblib.dump(bundle, tmp_path / "odd.model.joblib")
    with pytest.raises(InputError, match=r"^cannot save a logreg classifier made of LogisticRegression: a safetensors"):
        classify_map(
            raster, None, tmp_path / "m.tif", model=tmp_path / "odd.model.joblib", save_model=tmp_path / "n.safetensors"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.model.joblib"]
