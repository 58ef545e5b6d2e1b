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
with a legend, a metrics JSON and the fitted model (joblib) that `--model` applies to other feature rasters of the
same backbone and normalisation.

Reading and placing the labels and the CV groups live in `labels.py`; loading a saved model and its identity
checks in `classifier_model.py`.

What may mislead a reader of the scores (no cross-validation, imbalanced labels, test labels next to training ones)
is a `UserWarning` (`warnings.warn`): a Python caller can catch or filter it, and the command line shows it as one
line "geodino: warning: ..." (`geodino.cli`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from geodino.embed import style
from geodino.embed.classifier_model import MODEL_KIND, _complete_old_identity, _identity, load_model
from geodino.embed.classify_options import METHODS, check_model_mix, check_options
from geodino.embed.classify_outputs import NODATA, class_entries, map_record, run_settings, write_class_map
from geodino.embed.compat import check_same_backbone
from geodino.embed.labels import cv_groups, layer_for_test_labels, read_labels, sample_labels
from geodino.embed.writers import EmbeddingReader
from geodino.errors import InputError, plural
from geodino.io import atomic_path, check_writable


def sidecars(out: str | Path) -> dict[str, Path]:
    """Files written next to the class COG: metrics JSON, model, PNG quick-look, QGIS style, SLD style."""
    out = Path(out)
    return {
        "metrics": out.with_suffix(".metrics.json"),
        "model": out.with_suffix(".model.joblib"),
        "png": out.with_suffix(".png"),
        "qml": style.qml_path(out),
        "sld": style.sld_path(out),
    }


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (kNN on cosine); module-level so a saved model unpickles."""
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


def class_names(values: np.ndarray) -> np.ndarray:
    """Label values as class names: integral numbers as integers ("3", not "3.0": a numeric column with an empty
    cell is read as floats), anything else as its text."""
    import numbers

    def name(v: Any) -> str:
        if isinstance(v, numbers.Integral) and not isinstance(v, bool):
            return str(int(v))
        if isinstance(v, numbers.Real) and not isinstance(v, bool) and float(v).is_integer():
            return str(int(v))
        return str(v)

    return np.array([name(v) for v in values], dtype=object).astype(str)


def _natural_key(name: str) -> tuple:
    import re

    if re.fullmatch(r"-[0-9]+", name):  # a negative class code by value: -1 before 0 (it sorted after 300)
        return ((0, int(name), ""),), name
    parts = tuple(
        (0, int(t), "") if t.isascii() and t.isdigit() else (1, 0, t) for t in re.split(r"([0-9]+)", name) if t
    )
    return parts, name  # the name breaks ties ("01" and "1"), so the order never depends on set iteration


def natural_order(names: Any) -> list[str]:
    """Class names in natural order: numbers by value ("2" before "10"), text alphabetically with its numbers."""
    return sorted((str(n) for n in names), key=_natural_key)


def class_codes(classes: list[str]) -> dict[str, int]:
    """Pixel value of each class in the map: the class's own code when every class is an integer 0..254 (so
    label 10 is pixel 10), else its position in `classes` (natural order)."""
    ints = [c for c in classes if c.isascii() and c.isdigit() and str(int(c)) == c and int(c) < NODATA]
    if len(ints) == len(classes):
        return {c: int(c) for c in classes}
    return {c: i for i, c in enumerate(classes)}


def scores(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-class F1 and the confusion matrix (rows: true, columns: predicted)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    labels = classes + natural_order(set(map(str, y_true)) - set(classes))  # test classes the model never saw
    f1 = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    # balanced accuracy = mean recall over the classes in y_true, from the confusion matrix over every label:
    # sklearn's balanced_accuracy_score builds its own without `labels` and warns on a one-class test layer
    recall = np.diag(cm)[support > 0] / support[support > 0]
    # F1 is undefined for a class neither in y_true nor predicted (a model class the test layer lacks): null, and
    # left out of the macro mean, where sklearn's zero_division=0 made it a 0 (a perfect map scored 2/3 on 2 of 3)
    scored = (support > 0) | (cm.sum(axis=0) > 0)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(recall.mean()),
        "f1": {c: float(v) if ok else None for c, v, ok in zip(labels, f1, scored, strict=True)},
        "macro_f1": float(np.mean(f1[scored])),
        "confusion": {"labels": labels, "matrix": cm.tolist()},
    }


def headline(s: dict[str, Any]) -> str:
    """The scores of `scores` for a line that says "... accuracy: " before them, balanced accuracy and macro F1
    first: plain accuracy on imbalanced labels mostly scores the largest class (1417 tree cells against 40 ground
    ones: 90.7 % plain, 62 % balanced)."""
    return f"balanced {s['balanced_accuracy']:.1%}, macro F1 {s['macro_f1']:.2f}, plain {s['accuracy']:.1%}"


IMBALANCE = 0.1
"""A smallest class with fewer than this share of the largest class's labelled cells is warned about."""


def imbalance_warning(counts: dict[str, dict[str, int]], labels: Any) -> str | None:
    """One line (a warning's message, without the CLI's "geodino: warning: ") when the smallest class has fewer
    than `IMBALANCE` of the largest class's cells (`counts`: class -> {"cells": n, ...}), else None: its plain
    accuracy says little, balanced accuracy and macro F1 do."""
    cells = {c: v["cells"] for c, v in counts.items()}
    small, large = min(cells, key=cells.__getitem__), max(cells, key=cells.__getitem__)
    if cells[small] >= IMBALANCE * cells[large]:
        return None
    return (
        f"imbalanced labels in {labels}: class {small!r} has {cells[small]} labelled cells, "
        f"{cells[small] / cells[large]:.1%} of class {large!r} ({cells[large]}); plain accuracy mostly scores "
        f"{large!r}: read balanced accuracy and macro F1, or label more {small!r}"
    )


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
    gdf = read_labels(labels, column, layer=layer)  # type: ignore[arg-type]
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
    `test`."""
    if (labels is None) == (model is None):
        raise InputError(
            "give either LABELS (a label file to fit on, with --column; labels= and column= in Python) or --model FILE "
            "(model= in Python), not both"
        )
    if labels is not None and not column:
        raise InputError(
            "classify needs --column NAME (column= in Python): the label file's column that holds the class names"
        )
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
        else:
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
            if model is None:
                _test_near_training(metrics, tcells, train_cells, ty, tp, classes, cv_gap, test, labels)
        record = map_record(labels, column, layer, model, bundle, neighbors=neighbors, max_cells=max_cells, seed=seed)
        write_class_map(rd, clf, codes, out, classes, record)
    metrics["settings"] = run_settings(model, method, neighbors, folds, cv_gap, max_cells, seed)
    _write_side_files(out, png, side, classes, codes, metrics, bundle if model is None else None, model_out)
    return metrics


def _check_test_classes(found: set[str], classes: list[str], test: str | Path, column: Any) -> None:
    """Refuse a test layer none of whose classes the model knows (another column, other codes): every cell would
    count as an error and the scores read 0 %, as if the map were wrong."""
    if found & set(classes):
        return
    few = natural_order(found)
    shown = ", ".join(few[:5]) + (", ..." if len(few) > 5 else "")
    raise InputError(
        f"test labels in {test}: none of their classes in column {column!r} ({shown}) is a class of the model "
        f"({', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''}); pass the --column of the test file that "
        "holds the model's classes (column= in Python)"
    )


def _check_outputs(
    out: str | Path,
    png: str | Path | None,
    save_model: str | Path | None,
    model: Any,
    overwrite: bool,
    reads: dict[str, Any],
) -> tuple[Path, dict[str, Path], Path, Path]:
    """Every output of the run checked writable before any work, and none of them one of the inputs (`reads`): the
    map, its side files and (when fitting) the model file. Returns the map's path, the side files, the PNG and the
    model file."""
    from geodino.embed.map_outputs import file_name, pam_path
    from geodino.embed.products import check_map_outputs

    side = sidecars(out)
    png = file_name(png, "png", "classify") or side["png"]
    model_out = file_name(save_model, "save_model", "classify") or side["model"]
    check_map_outputs(
        "classify",
        out,
        png=png,
        metrics=side["metrics"],
        style=side["qml"],
        save_model=model_out if model is None else None,
        reads=reads,
        **{"attribute table": pam_path(out)},
    )
    out = check_writable(out, overwrite=overwrite)
    for p in (side["metrics"], png) + ((model_out,) if model is None else ()):
        check_writable(p, overwrite=overwrite)
    return out, side, png, model_out


def _saved_model(
    model: str | Path, ident: Any, features: str | Path, column: str | None, metrics: dict[str, Any]
) -> tuple[Any, list[str], Any, dict[str, int], dict[str, Any]]:
    """A saved model, refused unless fitted on features of this raster's backbone: classifier, classes, label
    column, class codes and the bundle; `metrics` records where it came from."""
    bundle = load_model(model)
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


def _write_side_files(
    out: Path,
    png: Path,
    side: dict[str, Path],
    classes: list[str],
    codes: dict[str, int],
    metrics: dict[str, Any],
    fitted: dict[str, Any] | None,
    model_out: Path,
) -> None:
    """After the map: its QGIS style, the PNG quick-look, the fitted model (`fitted`: its bundle, None when a
    saved model was applied) and the metrics JSON; `metrics` gains what they are."""
    entries = class_entries(classes, codes)
    style.palette_qml(out, entries, nodata=NODATA)
    from geodino.embed.quicklook import classes_png

    cv = metrics.get("cv") or {}
    title = f"{Path(out).name}" + (f"\nblocked CV accuracy: {headline(cv)}" if "accuracy" in cv else "")
    classes_png(out, png, entries, title=title)
    metrics.update(
        classes=classes, values={c: codes[c] for c in classes}, png=str(png), qml=str(side["qml"]), sld=str(side["sld"])
    )
    if fitted is not None:
        import joblib

        with atomic_path(model_out, overwrite=True) as tmp:
            joblib.dump(fitted, tmp)
        metrics["model"] = str(model_out)
    with atomic_path(side["metrics"], overwrite=True) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    metrics["metrics"] = str(side["metrics"])


def _test_near_training(
    metrics: dict[str, Any],
    test_cells: np.ndarray,
    train_cells: np.ndarray,
    y: np.ndarray,
    pred: np.ndarray,
    classes: list[str],
    gap: int,
    test: str | Path,
    labels: str | Path | None,
) -> None:
    """Flag test cells on, or within `gap` cells of, a training cell (the CV's own rule for "not independent"):
    a test layer that repeats the training labels scored 100 % as if independent. Their count goes into the
    metrics (`test.near_training`), the scores of the other cells into `test.independent`, and a warning."""
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(train_cells).query(test_cells, p=np.inf, distance_upper_bound=gap + 0.5)
    near = np.isfinite(dist)
    metrics["test"]["near_training"] = int(near.sum())
    if not near.any():
        return
    within = "on" if gap == 0 else f"on or within {gap} cell(s) of"
    if near.all():
        warnings.warn(
            f"all {len(near)} test cells from {test} lie {within} training cells from {labels}; "
            "the test scores are not independent: draw test labels away from the training labels",
            stacklevel=2,
        )
        return
    metrics["test"]["independent"] = scores(y[~near], pred[~near], classes)
    warnings.warn(
        f"{int(near.sum())} of {len(near)} test cells from {test} lie {within} training cells "
        f"from {labels}; the metrics' test.independent scores the other {int((~near).sum())}",
        stacklevel=2,
    )


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)
