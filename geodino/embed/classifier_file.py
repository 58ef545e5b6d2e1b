"""The `embed classify` model file: a safetensors file, the classifier's fitted arrays as tensors and everything else
(classes, codes, backbone identity, where it was fitted, its CV scores, the estimator's settings) as JSON in the
header's metadata (key `geodino`). Loading it runs no code, unlike the joblib pickle geodino wrote before (GIS teams
share these models; unpickling someone else's file can run anything). safetensors rather than `.npz`: it is already a
dependency, its header is bounded JSON read without decompression, and other tools read it.

The two classifiers `build_classifier` makes are fully described by arrays: the logistic regression by the scaler's
`mean_`/`scale_`/`var_`/`n_samples_seen_` and the regression's `coef_`/`intercept_`/`n_iter_` (set back on a new
pipeline), the cosine kNN by its training vectors (`_fit_X`, already unit length) and their class indices (`_y`),
on which a new kNN is fitted. Either predicts exactly what the fitted pipeline did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from geodino.errors import InputError, one_line

MODEL_KIND = "geodino.embed.classifier/2"
"""The kind a safetensors model records (`/1`: the joblib pickle of geodino before)."""
MODEL_SUFFIX = ".safetensors"
META_KEY = "geodino"

_LOGREG = {"scaler": ("mean_", "scale_", "var_", "n_samples_seen_"), "logreg": ("coef_", "intercept_", "n_iter_")}


def _json_value(o: Any) -> Any:
    """numpy scalars and arrays in a bundle (an old pickled one may hold them) as JSON values."""
    if isinstance(o, np.generic | np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON")


def _steps(clf: Any) -> list[Any]:
    return [s for _, s in getattr(clf, "steps", [])]


def _arrays(clf: Any, method: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The fitted arrays of `clf` (a `build_classifier` pipeline) and its settings (JSON): one line for another
    estimator, which no safetensors model can describe."""
    steps = _steps(clf)
    names = [type(s).__name__ for s in steps]
    if method == "logreg" and names == ["StandardScaler", "LogisticRegression"]:
        scaler, lr = steps
        tensors = {f"scaler.{a}": np.asarray(getattr(scaler, a)) for a in _LOGREG["scaler"]}
        tensors |= {f"logreg.{a}": np.asarray(getattr(lr, a)) for a in _LOGREG["logreg"]}
        return tensors, {"params": lr.get_params(), "classes": [str(c) for c in lr.classes_]}
    if method == "knn" and names == ["FunctionTransformer", "KNeighborsClassifier"]:
        knn = steps[1]
        tensors = {"knn.fit_X": np.asarray(knn._fit_X), "knn.y": np.asarray(knn._y, dtype=np.int64)}
        return tensors, {"params": knn.get_params(), "classes": [str(c) for c in knn.classes_]}
    raise InputError(
        f"cannot save a {method} classifier made of {' + '.join(names) or type(clf).__name__}: a safetensors model "
        "holds the logistic regression or kNN pipeline of `geodino embed classify`; fit the model again"
    )


def model_payload(bundle: dict[str, Any]) -> tuple[dict[str, np.ndarray], str]:
    """The tensors and the JSON metadata of `bundle` (`classify._fit`'s: kind, classifier, classes, codes, ...), or
    one line when it cannot be saved (`classify_map` asks before a re-saved old model's map is written)."""
    tensors, estimator = _arrays(bundle["classifier"], str(bundle.get("method")))
    meta = {k: v for k, v in bundle.items() if k not in ("classifier", "kind")}
    try:
        text = json.dumps({"kind": MODEL_KIND, **meta, "estimator": estimator}, default=_json_value)
    except (TypeError, ValueError) as exc:  # a hand-made bundle holding objects JSON has no form for
        raise InputError(f"cannot save the model's record as JSON ({one_line(exc)}); fit the model again") from exc
    return {k: np.ascontiguousarray(v) for k, v in tensors.items()}, text


def save_model(bundle: dict[str, Any], path: str | Path) -> None:
    """Write `bundle` to `path` as a safetensors model (`model_payload`)."""
    from safetensors.numpy import save_file

    tensors, text = model_payload(bundle)
    save_file(tensors, str(path), metadata={META_KEY: text})


def _header_meta(path: Path) -> Any:
    """The geodino metadata in the header of a safetensors file (8 bytes of little-endian length, then JSON), read
    by hand so a model cut short after its header is told apart from a file that is no model; None without one."""
    try:
        with path.open("rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if not 2 <= n <= HEADER_LIMIT:
                return None
            header = json.loads(fh.read(n))
        return json.loads(header["__metadata__"][META_KEY])
    except (OSError, ValueError, KeyError, TypeError):  # not JSON (a pickle, text), or JSON without our metadata
        return None


HEADER_LIMIT = 100_000_000
"""safetensors' own bound on a header (bytes)."""


def read_model(path: Path, not_a_model: str) -> dict[str, Any]:
    """The bundle of the safetensors model at `path`, its classifier rebuilt (`not_a_model`: the line for a file that
    is not one); a damaged one, or one of another kind, is one line."""
    from safetensors import safe_open

    meta = _header_meta(path)
    kind = meta.get("kind") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or not isinstance(kind, str) or not kind.startswith("geodino.embed.classifier/"):
        raise InputError(not_a_model)
    if kind != MODEL_KIND:
        raise InputError(
            f"model {path} is a {kind} model, and this geodino reads {MODEL_KIND}: use the geodino that saved it, "
            "or fit the model again here (geodino embed classify FEATURES LABELS --column C --out MAP.tif)"
        )
    try:
        with safe_open(str(path), "np") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta["classifier"] = _rebuild(meta, tensors)
        del meta["estimator"]  # described by the classifier now: the bundle `classify._fit` made
    except Exception as exc:  # past a geodino header, any failure (cut short, arrays missing or misshapen) is damage
        fitted_on = meta.get("fitted_on")
        on: dict[str, Any] = fitted_on if isinstance(fitted_on, dict) else {}
        raise InputError(
            f"model {path} is damaged ({one_line(exc)}); fit it again: geodino embed classify "
            f"{on.get('features') or 'FEATURES'} {on.get('labels') or 'LABELS'} --column {meta.get('column') or 'C'} "
            f"--out MAP.tif --save-model {path} --overwrite"
        ) from exc
    return meta


def _rebuild(meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> Any:
    """The fitted pipeline of `meta["estimator"]` and `tensors`, its shapes checked against the recorded classes and
    feature count (a mismatch is a ValueError, as any damage)."""
    from geodino.embed.classify import build_classifier

    method, est = meta["method"], meta["estimator"]
    classes = np.array([str(c) for c in est["classes"]])
    params = dict(est["params"])
    n_bands = int(meta["backbone"]["n_bands"])
    if method == "logreg":
        clf = build_classifier("logreg")
        scaler, lr = clf[0], clf[-1]
        lr.set_params(**params)
        for step, name in ((scaler, "scaler"), (lr, "logreg")):
            for a in _LOGREG[name]:
                value = tensors[f"{name}.{a}"]
                setattr(step, a, value[()] if value.ndim == 0 else value)  # a count saved as a 0-d tensor
        lr.classes_ = classes
        rows = 1 if len(classes) == 2 else len(classes)
        if lr.coef_.shape != (rows, n_bands) or lr.intercept_.shape != (rows,) or scaler.mean_.shape != (n_bands,):
            raise ValueError(f"arrays of shapes {lr.coef_.shape}, {scaler.mean_.shape} for {len(classes)} classes")
        scaler.n_features_in_ = lr.n_features_in_ = n_bands
        return clf
    if method == "knn":
        fit_x, y = tensors["knn.fit_X"], tensors["knn.y"]
        if fit_x.ndim != 2 or fit_x.shape[1] != n_bands or y.shape != (len(fit_x),):
            raise ValueError(f"training arrays of shapes {fit_x.shape}, {y.shape} for {n_bands} features")
        if not np.array_equal(np.unique(y), np.arange(len(classes))) or not 1 <= params["n_neighbors"] <= len(y):
            k = params["n_neighbors"]
            raise ValueError(f"{len(y)} training vectors for {len(classes)} classes, {k} neighbours")
        clf = build_classifier("knn", neighbors=int(params["n_neighbors"]), n_train=len(fit_x))
        clf[-1].set_params(**params)
        clf[0].fit(fit_x[:1])
        clf[-1].fit(fit_x, classes[y])
        return clf
    raise ValueError(f"classifier method {method!r}")
