"""Few-shot maps from a feature raster: a handful of labelled points or polygons -> a class COG (`embed classify`).

Labels (GeoPackage, GeoJSON, Shapefile, GeoParquet; points, lines or polygons; any CRS) are reprojected to the
raster's CRS. A point labels the cell it falls in, a line every cell it touches; a polygon labels the valid cells
whose centre is inside (or, for a polygon too small to hold a cell centre, every cell it touches), at most
`max_cells` per polygon or line drawn at random so one large polygon does not drown the others. A scikit-learn
classifier (logistic regression on standardised features, or cosine kNN) is fitted on those cells and applied to
every valid cell.

Accuracy is estimated by cross-validation blocked by label geometry (`StratifiedGroupKFold` over `cv_groups`:
the cells of one label feature form a group, and features that share a cell or have cells within `cv_gap`
cells of each other are joined into one): no cell, and no cell next to it, is on both sides of a split, which
would otherwise report near-duplicate cells as "unseen" (two clicks in one cell scored random classes at 75-90 %).
A `--test` layer gives accuracy, per-class F1 and a confusion matrix on independent labels. Outputs: a 2-band
uint8 COG (band 1 class with a colour table, 255 = nodata; integer classes 0..254 keep their own code as pixel
value, other class names are numbered in natural order; band 2 confidence = the top class probability in %,
255 = nodata; band 1's class names also in a GDAL raster attribute table, MAP.tif.aux.xml), a `.qml` style, a PNG
with a legend, a metrics JSON and the fitted model (a safetensors file: arrays and JSON, no code) that `--model`
applies to other feature rasters of the same backbone and normalisation.

Reading and placing the labels and the CV groups live in `labels.py`; loading a saved model and its identity
checks in `classifier_model.py`; the class names, their natural order and pixel codes in `classify_classes.py`; the
scores, their headline and the checks of what may mislead in `classify_scores.py`; the side files' names, their
checks before any work and their writing after the map in `classify_sidecars.py` (their public names re-exported
here).

What may mislead a reader of the scores (no cross-validation, imbalanced labels, test labels next to training ones)
is a `UserWarning` (`warnings.warn`): a Python caller can catch or filter it, and the command line shows it as one
line "geodino: warning: ..." (`geodino.cli`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from geodino.embed.classifier_file import model_payload
from geodino.embed.classifier_model import MODEL_KIND, _complete_old_identity, _identity, load_model, pickle_warning
from geodino.embed.classify_classes import class_codes, class_names, natural_order
from geodino.embed.classify_options import METHODS, check_model_mix, check_options
from geodino.embed.classify_outputs import NODATA, map_record, run_settings, write_class_map
from geodino.embed.classify_outputs import class_entries as class_entries  # re-exported (CONTRIBUTING's table)
from geodino.embed.classify_scores import IMBALANCE as IMBALANCE  # re-exported: the scores' home
from geodino.embed.classify_scores import _check_test_classes, _test_near_training, scores
from geodino.embed.classify_scores import headline as headline  # re-exported (embed classify's summary line)
from geodino.embed.classify_scores import imbalance_warning as imbalance_warning
from geodino.embed.classify_sidecars import _check_outputs, _write_side_files
from geodino.embed.classify_sidecars import sidecars as sidecars
from geodino.embed.compat import check_same_backbone
from geodino.embed.labels import cv_groups, layer_for_test_labels, read_labels, sample_labels
from geodino.embed.writers import EmbeddingReader
from geodino.errors import InputError, plural


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (kNN on cosine); module-level so an older geodino's pickled model unpickles."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def build_classifier(method: str = "logreg", *, neighbors: int = 5, n_train: int | None = None, seed: int = 0) -> Any:
    """Logistic regression on standardised features (balanced class weights), or distance-weighted cosine kNN."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if method == "logreg":
        return make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed)
        )
    if method == "knn":
        k = max(1, min(neighbors, n_train or neighbors))
        return make_pipeline(
            FunctionTransformer(_unit_rows), KNeighborsClassifier(n_neighbors=k, weights="distance", metric="cosine")
        )
    raise InputError(f"classifier method {method!r} is not one of {', '.join(METHODS)}")


def blocked_cv(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    method: str,
    neighbors: int,
    folds: int,
    seed: int,
    blocked_by: str = "label feature",
) -> dict[str, Any]:
    """Out-of-fold predictions with folds blocked by `groups` (`cv_groups`: label features joined by shared or
    neighbouring cells); skipped (with the reason) when a class lies in fewer than two groups, since then no fold
    could test it on labels it was not trained on or next to."""
    from sklearn.model_selection import StratifiedGroupKFold

    classes = natural_order(set(y))  # the map's and legend's order: class_2 before class_10
    per_class = {c: len(set(groups[y == c])) for c in classes}
    n_splits = min(folds, min(per_class.values()))
    if n_splits < 2:
        few = [c for c, n in per_class.items() if n < 2]
        return {
            "skipped": f"class(es) {', '.join(few)} lie in a single group of labels (blocked by {blocked_by}); "
            "label each class in at least 2 places apart",
            "blocked_by": blocked_by,
        }
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    pred = np.empty(len(y), dtype=object)
    for train, test in cv.split(x, y, groups):
        clf = build_classifier(method, neighbors=neighbors, n_train=len(train), seed=seed).fit(x[train], y[train])
        pred[test] = clf.predict(x[test])
    out = scores(y, pred, classes)
    out.update(folds=n_splits, blocked_by=blocked_by, groups=len(set(groups.tolist())), label_groups=per_class)
    return out


def _fit(
    rd: Any,
    labels: Any,
    column: Any,
    layer: str | None,
    method: str,
    neighbors: int,
    folds: int,
    max_cells: int,
    seed: int,
    ident: Any,
    features: str | Path,
    cv_gap: int = 1,
) -> tuple[Any, list[str], dict[str, Any], dict[str, Any], np.ndarray]:
    """Fit a classifier on the labelled cells: (classifier, classes, model bundle, metrics of the fit, the
    training cells [n, 2] as (row, col))."""
    gdf = read_labels(labels, column, layer=layer)
    x, y, features_of, cells = sample_labels(rd, gdf, column, max_cells=max_cells, seed=seed, path=labels)
    y = class_names(y)
    classes = natural_order(set(y))
    if len(classes) < 2:
        raise InputError(
            f"labels in {labels} hold one class only ({classes[0]!r} in column {column!r}) on valid cells; "
            "a classifier needs at least two: label other classes too"
        )
    if len(classes) > NODATA:  # codes 0..254 and nodata 255 fill the map's one byte
        raise InputError(
            f"column {column!r} of {labels} holds {len(classes)} classes; at most 255 fit a map "
            "(uint8 codes 0..254; 255 is nodata): merge classes or split the labels"
        )
    groups = cv_groups(features_of, cells, cv_gap)
    blocked_by = (
        "label features sharing a cell" if cv_gap == 0 else f"label features within {cv_gap} cell(s) of each other"
    )
    with rd.fitting(f"the {method} classifier's fit on {plural(len(y), 'labelled cell')}"):
        cv = blocked_cv(x, y, groups, method=method, neighbors=neighbors, folds=folds, seed=seed, blocked_by=blocked_by)
        if "skipped" in cv:
            warnings.warn(f"no cross-validation: {cv['skipped']}", stacklevel=2)
        clf = build_classifier(method, neighbors=neighbors, n_train=len(y), seed=seed).fit(x, y)
    counts = {
        c: {"cells": int((y == c).sum()), "label_features": len(set(features_of[y == c].tolist()))} for c in classes
    }
    warning = imbalance_warning(counts, labels)
    if warning:
        warnings.warn(warning, stacklevel=2)
    codes = class_codes(classes)
    bundle = {
        "kind": MODEL_KIND,
        "classifier": clf,
        "classes": classes,
        "codes": codes,
        "column": column,
        "method": method,
        "backbone": ident,
        "fitted_on": {"features": str(features), "labels": str(labels)},
        "cv": cv,
        "sklearn_version": _sklearn_version(),
    }
    fitted = {"labels": str(labels), "column": column, "method": method, "train": counts, "cv": cv}
    return clf, classes, bundle, fitted, cells


def classify_map(
    features: str | Path,
    labels: str | Path | None,
    out: str | Path,
    *,
    column: str | None = None,
    layer: str | None = None,
    model: str | Path | None = None,
    test: str | Path | None = None,
    method: str | None = None,
    neighbors: int | None = None,
    folds: int | None = None,
    max_cells: int | None = None,
    cv_gap: int | None = None,
    png: str | Path | None = None,
    save_model: str | Path | None = None,
    seed: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Fit on `labels[column]` (or load `model`), write the class COG and its side files; return the metrics: what
    `OUT.metrics.json` holds (the scores, `classes`, `values`: class -> pixel value, `settings`: the options used;
    paths as text: `map`, `png`, `qml`, `sld`, `model` when one was saved or loaded) plus `metrics`, that file's path.

    `cv_gap`: label features with cells within this many cells of each other are one group of the blocked
    cross-validation (never on both sides of a split). No cross-validation, imbalanced labels and test cells next to
    training cells are each a `UserWarning`. With `model`, the fitting options (method, neighbors, folds, cv_gap,
    save_model) are refused, and column, layer, max_cells and seed, which then read the `test` layer only, need
    `test`. `save_model` with an older geodino's pickled `model` (.joblib) re-saves it as a safetensors model."""
    if (labels is None) == (model is None):
        raise InputError(
            "give either LABELS (a label file to fit on, with --column; labels= and column= in Python) or --model FILE "
            "(model= in Python), not both"
        )
    if labels is not None and not column:
        raise InputError(
            "classify needs --column NAME (column= in Python): the label file's column that holds the class names"
        )
    save_model = None if save_model == "" else save_model  # "": the default name, as for the other outputs
    given = {"method": method, "neighbors": neighbors, "folds": folds, "cv_gap": cv_gap, "save_model": save_model}
    check_model_mix(model, test, given | {"column": column, "layer": layer, "max_cells": max_cells, "seed": seed})
    folds, neighbors, max_cells, cv_gap, seed, method = check_options(folds, neighbors, max_cells, cv_gap, seed, method)
    reads = {"feature raster": features, "labels file": labels, "--test file": test, "--model file": model}
    out, side, png, model_out = _check_outputs(out, png, save_model, model, overwrite, reads)
    metrics: dict[str, Any] = {"features": str(features), "map": str(out)}
    train_cells = None
    with EmbeddingReader(features).require_features() as rd:
        ident = _identity(rd)
        if model is not None:
            clf, classes, column, codes, bundle = _saved_model(model, ident, features, column, metrics)
            if save_model is not None:  # a re-saved older model: one that cannot be saved is refused before the map
                model_payload(bundle)
            pickle_warning(model, None if save_model is None else model_out)  # after its checks: refusals stay one line
        else:
            assert column is not None  # given with the labels (checked above)
            clf, classes, bundle, fitted, train_cells = _fit(
                rd, labels, column, layer, method, neighbors, folds, max_cells, seed, ident, features, cv_gap
            )
            codes = bundle["codes"]
            metrics.update(fitted)
        if set(map(str, clf.classes_)) != set(classes):  # a model file edited by hand: trust the classifier
            classes = natural_order(map(str, clf.classes_))
            codes = class_codes(classes)
        if test is not None:
            tlayer = layer if model is not None else layer_for_test_labels(test, layer)  # --model: the test's own
            tgdf = read_labels(test, column, layer=tlayer, what="test labels")
            tx, ty, _, tcells = sample_labels(
                rd, tgdf, column, max_cells=max_cells, seed=seed, name="test labels", path=test
            )
            ty = class_names(ty)
            _check_test_classes(set(ty), classes, test, column)
            tp = clf.predict(tx).astype(str)
            metrics["test"] = scores(ty, tp, classes)
            if train_cells is not None:  # fitted here (not --model)
                _test_near_training(metrics, tcells, train_cells, ty, tp, classes, cv_gap, test, labels)
        record = map_record(labels, column, layer, model, bundle, neighbors=neighbors, max_cells=max_cells, seed=seed)
        write_class_map(rd, clf, codes, out, classes, record)
    metrics["settings"] = run_settings(model, method, neighbors, folds, cv_gap, max_cells, seed)
    saved = None if model is not None and save_model is None else bundle | {"codes": codes}  # a fit, or a re-save
    _write_side_files(out, png, side, classes, codes, metrics, saved, model_out)
    return metrics


def _saved_model(
    model: str | Path, ident: Any, features: str | Path, column: str | None, metrics: dict[str, Any]
) -> tuple[Any, list[str], Any, dict[str, int], dict[str, Any]]:
    """A saved model, refused unless fitted on features of this raster's backbone: classifier, classes, label
    column, class codes and the bundle; `metrics` records where it came from."""
    bundle = load_model(model, warn=False)  # classify_map warns of a pickle once the model is accepted
    _complete_old_identity(bundle, Path(model), ident)
    check_same_backbone(
        bundle["backbone"],
        f"model {model}",
        ident,
        f"feature raster {features}",
        hint="a model applies only to feature rasters of the backbone, layers and normalisation it was fitted "
        "on: embed this raster with the same settings, or fit a model on it (classify FEATURES LABELS)",
    )
    clf, classes, column = bundle["classifier"], list(bundle["classes"]), column or bundle["column"]
    # a model saved before class codes were recorded numbered its classes by position
    codes = dict(bundle.get("codes") or {c: i for i, c in enumerate(classes)})
    # the CV of the fit scored the labels of the raster it was fitted on, not this one: kept apart
    metrics.update(model=str(model), fitted_on=bundle.get("fitted_on"), cv_at_fit=bundle.get("cv"))
    return clf, classes, column, codes, bundle


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)
