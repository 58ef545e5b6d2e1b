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
255 = nodata), a `.qml` style, a PNG with a legend, a metrics JSON and the fitted model (joblib) that `--model`
applies to other feature rasters of the same backbone and normalisation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from geodino.embed import style
from geodino.embed.compat import backbone_identity, check_same_backbone
from geodino.embed.writers import EmbeddingReader
from geodino.errors import ConfigError, InputError, did_you_mean
from geodino.io import atomic_path, check_writable

NODATA = 255
METHODS = ("logreg", "knn")
MODEL_KIND = "geodino.embed.classifier/1"


def sidecars(out: str | Path) -> dict[str, Path]:
    """Files written next to the class COG: metrics JSON, model, PNG quick-look, QGIS style."""
    out = Path(out)
    return {
        "metrics": out.with_suffix(".metrics.json"),
        "model": out.with_suffix(".model.joblib"),
        "png": out.with_suffix(".png"),
        "qml": style.qml_path(out),
    }


def read_labels(path: str | Path, column: str, *, layer: str | None = None, what: str = "labels") -> Any:
    """Label features with a non-null `column`, as a GeoDataFrame (own CRS; reprojected by the caller)."""
    from geodino.embed.vectors import first_layer_note, has_geometry, read_features

    hint = "draw a few points or polygons per class"
    gdf = read_features(path, layer=layer, what=what, empty_hint=hint, note=False)
    if column not in gdf.columns:  # names the layer read: no separate note
        raise InputError(_missing_column(path, column, [c for c in gdf.columns if c != gdf.geometry.name], layer, what))
    note = first_layer_note(path, layer, what)
    if note:
        print(note, file=sys.stderr)
    keep = gdf[column].notna().to_numpy() & has_geometry(gdf.geometry)
    if (~keep).any():
        print(
            f"geodino: warning: {int((~keep).sum())} of {len(gdf)} {what} in {path} "
            f"{'has' if (~keep).sum() == 1 else 'have'} no {column!r} value or no geometry and are ignored",
            file=sys.stderr,
        )
    return gdf[keep].reset_index(drop=True)


def _missing_column(path: str | Path, column: str, cols: list[str], layer: str | None, what: str) -> str:
    """The error for a label file without `column`: the closest column, and for a multi-layer file which layer
    was read and which other layers have the column (the usual cause: the labels are in another layer)."""
    from geodino.embed.vectors import layer_columns, list_layers

    layers = list_layers(path)
    read = layer or (layers[0] if layers else None)
    where = f" (layer {read!r} of {len(layers)}: {', '.join(layers)})" if len(layers) > 1 else ""
    close = did_you_mean(column, cols)
    hint = f"did you mean {close[0]!r}? " if close else ""
    text = f"{what} in {path}{where} have no column {column!r}; {hint}columns: {', '.join(map(str, cols))}"
    others = [name for name, c in layer_columns(path, [n for n in layers if n != read]).items() if column in c]
    if others:
        text += f"; layer {others[0]!r} has it: pass --layer {others[0]}" + (
            f" (also in {', '.join(others[1:])})" if len(others) > 1 else ""
        )
    elif len(layers) > 1:
        text += "; no other layer has it either"
    return text


def sample_labels(
    rd: EmbeddingReader,
    gdf: Any,
    column: str,
    *,
    max_cells: int = 1000,
    seed: int = 0,
    name: str = "labels",
    path: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Feature vectors under the labels: (X [n,D], class values [n], label feature index [n], cell [n, 2] as
    (row, col) of the feature raster; `cv_groups` joins features by cell for the cross-validation). Labels are placed
    as `zonal` places its rows (`placement.point_cells`, `cell_window`, `cell_mask`), on any affine grid."""
    from rasterio.windows import Window

    from geodino.embed.placement import (
        POINTS,
        cell_mask,
        cell_window,
        finite_bounds,
        point_cells,
        raster_extent,
        to_raster_crs,
        unplaced_hint,
    )

    own_crs = gdf.crs
    gdf = to_raster_crs(gdf, rd, what=name, path=path or "the label file")
    unplaced = sum(not finite_bounds(g) for g in gdf.geometry if g is not None and not g.is_empty)
    rng = np.random.default_rng(seed)
    xs, ys, gs, cs = [], [], [], []
    outside = nodata = 0
    for g, (geom, value) in enumerate(zip(gdf.geometry, gdf[column], strict=True)):
        if not finite_bounds(geom):  # not placeable in the raster's CRS (PROJ gives inf): outside, without casts
            outside += 1
            continue
        if geom.geom_type in POINTS:
            cells = point_cells(rd.transform, geom, rd.width, rd.height)
            if not cells:
                outside += 1
                continue
            vecs, where = [], []
            for r, c in cells:
                f, v = rd.read(Window(c, r, 1, 1))
                if v[0, 0]:
                    vecs.append(f[:, 0, 0])
                    where.append((r, c))
            if not vecs:
                nodata += 1
                continue
            found, at = np.stack(vecs), np.asarray(where, np.int64)
        else:
            win = cell_window(rd.transform, geom, rd.width, rd.height)
            if win is None:  # the label misses the raster, or only touches its edge
                outside += 1
                continue
            inside = cell_mask(geom, rd.transform, win, all_touched=False)
            if not inside.any():  # too small to hold a cell centre: every cell it touches
                inside = cell_mask(geom, rd.transform, win, all_touched=True)
            if not inside.any():
                outside += 1
                continue
            f, v = rd.read(win)
            m = inside & v
            if not m.any():
                nodata += 1
                continue
            found = f[:, m].T
            rr, cc = np.nonzero(m)
            at = np.stack([rr + int(win.row_off), cc + int(win.col_off)], axis=1).astype(np.int64)
            if len(found) > max_cells:
                pick = rng.choice(len(found), max_cells, replace=False)
                found, at = found[pick], at[pick]
        xs.append(found)
        ys.append(np.full(len(found), value, dtype=object))
        gs.append(np.full(len(found), g))
        cs.append(at)
    n = len(gdf)
    hint = f"; {unplaced_hint(unplaced, own_crs)}" if unplaced else ""
    if not xs:
        raise InputError(
            f"none of the {n} {name} cover a valid cell of {rd.path} ({outside} outside it, {nodata} on nodata; "
            f"{raster_extent(rd)})" + (hint or "; check that they cover the same area")
        )
    if outside or nodata:
        print(
            f"geodino: warning: {outside + nodata} of {n} {name} {'is' if outside + nodata == 1 else 'are'} ignored "
            f"({outside} outside {rd.path}, "
            f"{nodata} only on nodata cells){hint}",
            file=sys.stderr,
        )
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys), np.concatenate(gs), np.concatenate(cs)


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
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(recall.mean()),
        "f1": {c: float(v) for c, v in zip(labels, f1, strict=True)},
        "macro_f1": float(np.mean(f1)),
        "confusion": {"labels": labels, "matrix": cm.tolist()},
    }


def cv_groups(features: np.ndarray, cells: np.ndarray, gap: int = 1) -> np.ndarray:
    """Groups for the blocked cross-validation: label features joined (transitively) when they share a feature
    cell or have cells within `gap` cells of each other (Chebyshev distance: gap 1 joins cells touching by an edge
    or a corner), so no cell, nor a neighbour within `gap`, is on both sides of a split. Group ids are the
    smallest feature index of each group."""
    parent = {int(f): int(f) for f in np.unique(features)}

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    owner: dict[tuple[int, int], int] = {}
    for f, (r, c) in zip(features.tolist(), cells.tolist(), strict=True):
        key = (int(r), int(c))
        if key in owner:
            union(int(f), owner[key])
        else:
            owner[key] = int(f)
    if gap > 0:
        offsets = [(dr, dc) for dr in range(-gap, gap + 1) for dc in range(-gap, gap + 1) if (dr, dc) > (0, 0)]
        for (r, c), f in owner.items():
            for dr, dc in offsets:
                g = owner.get((r + dr, c + dc))
                if g is not None:
                    union(f, g)
    return np.array([find(int(f)) for f in features.tolist()], dtype=np.int64)


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

    classes = sorted(str(c) for c in set(y))
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


def _identity(rd: EmbeddingReader) -> dict[str, Any]:
    return backbone_identity(rd.metadata, rd.count)


def load_model(path: str | Path) -> dict[str, Any]:
    """A model saved by `classify_map` (joblib; only load files you trust, as with any pickle)."""
    import joblib

    path = Path(path)
    if not path.exists():
        raise InputError(f"model file {path} does not exist; fit one with `geodino embed classify FEATURES LABELS`")
    what = (
        f"{path} is not a model written by `geodino embed classify` (a joblib file); pass the MAP.model.joblib "
        "that `geodino embed classify FEATURES LABELS --column C --out MAP.tif` saved (or its --save-model path)"
    )
    try:
        model = joblib.load(path)
    except (ImportError, AttributeError) as exc:  # a pickle of classes this environment lacks
        raise InputError(
            f"cannot load model {path}: {str(exc).splitlines()[0]}; it was saved with other versions of its "
            "packages (scikit-learn, geodino): refit it here with `geodino embed classify FEATURES LABELS`"
        ) from exc
    except Exception as exc:  # not a pickle at all: pickle's own message is about its internals
        raise InputError(what) from exc
    if not isinstance(model, dict) or model.get("kind") != MODEL_KIND:
        raise InputError(what)
    return model


NORM_KEYS = ("final_norm", "l2_normalize")
"""Identity keys a model records since the GIS audit (e835d36); older models lack both."""


def _complete_old_identity(bundle: dict[str, Any], path: Path, target: dict[str, Any]) -> None:
    """Give a model saved before its identity recorded `final_norm` and `l2_normalize` the values of the feature
    raster it was fitted on (`fitted_on`), when that raster is still there with the model's backbone, layers and
    feature count; otherwise one line saying how to fit it again. Without them the model cannot be matched to a
    raster that records them (a float model on unit-length vectors put every cell into one class)."""
    ident = bundle.get("backbone") or {}
    if any(k in ident for k in NORM_KEYS) or not any(k in target for k in NORM_KEYS):
        return  # a current model, or a raster as old as the model: compared as they are
    fitted_on = bundle.get("fitted_on") or {}
    source = Path(str(fitted_on.get("features") or ""))
    if not source.is_absolute() and not source.exists():
        source = path.parent / source  # a relative path recorded from another working folder
    remake = (
        f"fit it again: geodino embed classify {fitted_on.get('features') or 'FEATURES'} "
        f"{fitted_on.get('labels') or 'LABELS'} --column {bundle.get('column') or 'NAME'} --out MAP.tif "
        f"--save-model {path} --overwrite"
    )
    old = f"model {path} was saved by an older geodino that did not record final_norm and l2_normalize"
    if not str(fitted_on.get("features") or "") or not source.exists():
        raise InputError(f"{old}, and the raster it was fitted on ({source}) is not there to read them from; {remake}")
    try:
        with EmbeddingReader(source) as rd:
            recorded = _identity(rd)
    except InputError as exc:
        raise InputError(f"{old}, and the raster it was fitted on cannot be read ({exc}); {remake}") from exc
    same = ("model_fingerprint", "layers", "layer_mode", "n_bands")
    if any(recorded.get(k) != ident.get(k) for k in same) or not all(k in recorded for k in NORM_KEYS):
        raise InputError(
            f"{old}, and the raster it was fitted on ({source}) now holds other features or records them neither; "
            f"{remake}"
        )
    ident.update({k: recorded[k] for k in NORM_KEYS})
    print(
        f"geodino: warning: model {path} predates recorded normalisation; using final_norm={recorded['final_norm']} "
        f"and l2_normalize={recorded['l2_normalize']} from {source}, the raster it was fitted on",
        file=sys.stderr,
    )


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
) -> tuple[Any, list[str], dict[str, Any], dict[str, Any]]:
    """Fit a classifier on the labelled cells: (classifier, classes, model bundle, metrics of the fit)."""
    gdf = read_labels(labels, column, layer=layer)  # type: ignore[arg-type]
    x, y, features_of, cells = sample_labels(rd, gdf, column, max_cells=max_cells, seed=seed, path=labels)
    y = class_names(y)
    classes = natural_order(set(y))
    if len(classes) < 2:
        raise InputError(
            f"labels in {labels} hold one class only ({classes[0]!r} in column {column!r}) on valid cells; "
            "a classifier needs at least two: label other classes too"
        )
    if len(classes) > 254:
        raise InputError(f"column {column!r} of {labels} holds {len(classes)} classes; at most 254 fit a map")
    groups = cv_groups(features_of, cells, cv_gap)
    blocked_by = (
        "label features sharing a cell" if cv_gap == 0 else f"label features within {cv_gap} cell(s) of each other"
    )
    cv = blocked_cv(x, y, groups, method=method, neighbors=neighbors, folds=folds, seed=seed, blocked_by=blocked_by)
    if "skipped" in cv:
        print(f"geodino: warning: no cross-validation: {cv['skipped']}", file=sys.stderr)
    clf = build_classifier(method, neighbors=neighbors, n_train=len(y), seed=seed).fit(x, y)
    counts = {
        c: {"cells": int((y == c).sum()), "label_features": len(set(features_of[y == c].tolist()))} for c in classes
    }
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
    return clf, classes, bundle, fitted


def _check_options(folds: int, neighbors: int, max_cells: int, cv_gap: int, method: str) -> None:
    """One line for a classify option out of range (before any file is read)."""
    if method not in METHODS:
        raise ConfigError(f"--method {method!r} is not one of {', '.join(METHODS)}")
    if folds < 2:
        raise ConfigError(
            f"--folds {folds}: cross-validation needs at least 2 folds (default 5); a class drawn in one place only "
            "skips the CV with a warning by itself"
        )
    if neighbors < 1:
        raise ConfigError(f"--neighbors {neighbors}: the kNN classifier needs at least 1 neighbour (default 5)")
    if max_cells < 1:
        raise ConfigError(f"--max-cells {max_cells}: sample at least 1 cell per label polygon (default 1000)")
    if cv_gap < 0:
        raise ConfigError(f"--cv-gap {cv_gap}: give a distance in cells >= 0 (default 1; 0 joins only shared cells)")


def classify_map(
    features: str | Path,
    labels: str | Path | None,
    out: str | Path,
    *,
    column: str | None = None,
    layer: str | None = None,
    model: str | Path | None = None,
    test: str | Path | None = None,
    method: str = "logreg",
    neighbors: int = 5,
    folds: int = 5,
    max_cells: int = 1000,
    cv_gap: int = 1,
    png: str | Path | None = None,
    save_model: str | Path | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Fit on `labels[column]` (or load `model`), write the class COG and its side files; return the metrics.

    `cv_gap`: label features with cells within this many cells of each other are one group of the blocked
    cross-validation (never on both sides of a split)."""
    from geodino.embed.products import check_map_outputs

    if (labels is None) == (model is None):
        raise InputError("give either LABELS (a label file to fit on, with --column) or --model FILE, not both")
    if labels is not None and not column:
        raise InputError("classify needs --column NAME: the label file's column that holds the class names")
    _check_options(folds, neighbors, max_cells, cv_gap, method)
    side = sidecars(out)
    png = Path(png) if png else side["png"]
    model_out = Path(save_model) if save_model else side["model"]
    check_map_outputs(
        "classify",
        out,
        png=png,
        metrics=side["metrics"],
        style=side["qml"],
        save_model=model_out if model is None else None,
    )
    out = check_writable(out, overwrite=overwrite)
    for p in (side["metrics"], png) + ((model_out,) if model is None else ()):
        check_writable(p, overwrite=overwrite)
    metrics: dict[str, Any] = {"features": str(features), "map": str(out)}
    with EmbeddingReader(features).require_features() as rd:
        ident = _identity(rd)
        if model is not None:
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
        else:
            clf, classes, bundle, fitted = _fit(
                rd, labels, column, layer, method, neighbors, folds, max_cells, seed, ident, features, cv_gap
            )
            codes = bundle["codes"]
            metrics.update(fitted)
        if set(map(str, clf.classes_)) != set(classes):  # a model file edited by hand: trust the classifier
            classes = natural_order(map(str, clf.classes_))
            codes = class_codes(classes)
        if test is not None:
            tgdf = read_labels(test, column, layer=layer, what="test labels")
            tx, ty, _, _ = sample_labels(
                rd, tgdf, column, max_cells=max_cells, seed=seed, name="test labels", path=test
            )
            metrics["test"] = scores(class_names(ty), clf.predict(tx).astype(str), classes)
        _write_map(rd, clf, codes, out, classes)
    entries = _entries(classes, codes)
    style.palette_qml(out, entries)
    from geodino.embed.quicklook import classes_png

    acc = (metrics.get("cv") or {}).get("accuracy")
    title = f"{Path(out).name}" + (f"  (blocked CV accuracy {acc:.1%})" if acc is not None else "")
    classes_png(out, png, entries, title=title)
    metrics.update(classes=classes, values={c: codes[c] for c in classes}, png=str(png), qml=str(side["qml"]))
    if model is None:
        import joblib

        with atomic_path(model_out, overwrite=True) as tmp:
            joblib.dump(bundle, tmp)
        metrics["model"] = str(model_out)
    with atomic_path(side["metrics"], overwrite=True) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    metrics["metrics"] = str(side["metrics"])
    return metrics


def _entries(classes: list[str], codes: dict[str, int]) -> dict[int, tuple[tuple[int, int, int, int], str]]:
    """Legend / palette entries: pixel value -> (colour, class name), colours by the class's position."""
    cmap = _class_colours(len(classes))
    return {codes[c]: (cmap[i], c) for i, c in enumerate(classes)}


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def _class_colours(k: int) -> dict[int, tuple[int, int, int, int]]:
    from geodino.embed.products import class_palette

    return class_palette(k)


def _write_map(rd: EmbeddingReader, clf: Any, codes: dict[str, int], out: Path, classes: list[str]) -> None:
    from geodino.embed.products import cog_profile, n_blocks, write_cog

    lut = np.array([codes[str(c)] for c in clf.classes_], np.uint8)

    def blocks():
        for win in rd.blocks():
            f, valid = rd.read(win)
            _, h, w = f.shape
            band = np.full((2, h, w), NODATA, np.uint8)
            if valid.any():
                proba = clf.predict_proba(f[:, valid].T)
                band[0][valid] = lut[np.argmax(proba, axis=1)]
                band[1][valid] = np.clip(np.rint(proba.max(axis=1) * 100), 0, 100).astype(np.uint8)
            yield win, band

    cmap = {value: colour for value, (colour, _) in _entries(classes, codes).items()}
    cmap[NODATA] = (0, 0, 0, 0)
    write_cog(
        out,
        blocks(),
        cog_profile(rd, 2, "uint8", NODATA),
        colormap=cmap,
        bands=("class", "confidence"),
        desc="classify",
        total=n_blocks(rd),
        GEODINO_CLASS_NAMES=json.dumps(classes),
        GEODINO_CLASS_VALUES=json.dumps([codes[c] for c in classes]),
        GEODINO_BANDS="1: class (colour table; GEODINO_CLASS_VALUES[i] is class GEODINO_CLASS_NAMES[i]; "
        "255 = nodata), 2: confidence = top class probability in % (255 = nodata)",
        GEODINO_MODEL_FINGERPRINT=rd.metadata.get("model_fingerprint", ""),
    )
