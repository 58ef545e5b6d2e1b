"""The class map of `embed classify` (`classify.py` fits or loads the classifier): the two-band COG of class values
and confidences (`write_class_map`), the legend entries its colour table, the .qml and the PNG share, and what made
the map (`map_record`: its tags) and the run (`run_settings`: the metrics JSON's `settings`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from geodino.embed.writers import EmbeddingReader

NODATA = 255


def class_entries(classes: list[str], codes: dict[str, int]) -> dict[int, tuple[tuple[int, int, int, int], str]]:
    """Legend / palette entries: pixel value -> (colour, class name), colours by the class's position."""
    cmap = _class_colours(len(classes))
    return {codes[c]: (cmap[i], c) for i, c in enumerate(classes)}


def _class_colours(k: int) -> dict[int, tuple[int, int, int, int]]:
    from geodino.embed.products import class_palette

    return class_palette(k)


def map_record(
    labels: Any,
    column: Any,
    layer: Any,
    model: Any,
    bundle: Mapping[str, Any],
    *,
    neighbors: int,
    max_cells: int,
    seed: int,
) -> dict[str, str]:
    """What a reproduction of the class map needs, as its tags (`write_class_map`): for a fitted map the labels file
    (`GEODINO_LABELS`, and by content, `GEODINO_LABELS_IDENTITY`: `provenance.vector_identity`, a shapefile's .dbf
    and other parts included), its column and layer, the method, the kNN's neighbours, `--max-cells` and `--seed` (they
    pick the labelled cells and the logistic regression's start); for a `--model` map the model file
    (`GEODINO_CLASSIFIER_MODEL` and its identity) and what it was fitted on, with its method and column. Before, the
    tags of a fitted map and of a `--model` map could not be told apart."""
    from geodino.embed.provenance import file_identity, vector_identity

    method = str(bundle.get("method") or "")
    rec: dict[str, Any]
    used: Any = neighbors  # a --model map: the model's own kNN neighbours (None when it has none)
    if model is not None:
        rec = {"classifier_model": str(model), "classifier_model_identity": file_identity(model)}
        rec |= {"classifier_fitted_on": json.dumps(bundle.get("fitted_on"), sort_keys=True)}
        rec |= {"label_column": bundle.get("column"), "classifier": method}
        used = getattr(_final_step(bundle.get("classifier")), "n_neighbors", None)
    else:
        rec = {"labels": str(labels), "labels_identity": vector_identity(labels), "label_column": column}
        rec |= {"label_layer": layer, "classifier": method, "max_cells": max_cells, "seed": seed}
    if method == "knn":
        rec["neighbors"] = used
    return {f"GEODINO_{k.upper()}": str(v) for k, v in rec.items() if v is not None}


def _final_step(clf: Any) -> Any:
    """The estimator at the end of a scikit-learn pipeline (the classifier itself when it is none)."""
    steps = getattr(clf, "steps", None)
    return steps[-1][1] if steps else clf


def run_settings(
    model: Any, method: str, neighbors: int, folds: int, cv_gap: int, max_cells: int, seed: int
) -> dict[str, Any]:
    """The options a run used, for the metrics JSON's `settings` (with their defaults filled in): a fit's method,
    neighbours (null for logreg, which has none), folds, CV gap, max cells and seed; with `--model` only max cells and
    seed, which then sample the `--test` layer (the others are the model's)."""
    if model is not None:
        return {"max_cells": max_cells, "seed": seed}
    knn = neighbors if method == "knn" else None
    return {"method": method, "neighbors": knn, "folds": folds, "cv_gap": cv_gap, "max_cells": max_cells, "seed": seed}


def write_class_map(
    rd: EmbeddingReader,
    clf: Any,
    codes: dict[str, int],
    out: Path,
    classes: list[str],
    record: Mapping[str, str] | None = None,
) -> None:
    """The class COG: band 1 the class value (colour table and RAT), band 2 the top class probability in %. `record`
    (`map_record`): more tags, what made the map."""
    from geodino.embed.products import cog_profile, write_cog

    lut = np.array([codes[str(c)] for c in clf.classes_], np.uint8)
    tags: dict[str, Any] = dict(record or {})  # GEODINO_* keys: extra tags, never write_cog's own options

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

    write_cog(
        out,
        blocks(),
        cog_profile(rd, 2, "uint8", NODATA),
        classes=class_entries(classes, codes),  # colour table and RAT of band 1, as the .qml and the PNG legend
        bands=("class", "confidence"),
        units=("", "%"),  # the confidence is the top class probability in %, not a 0-255 value
        desc="classify",
        source=rd,
        GEODINO_CLASS_NAMES=json.dumps(classes),
        GEODINO_CLASS_VALUES=json.dumps([codes[c] for c in classes]),
        GEODINO_BANDS="1: class (colour table; GEODINO_CLASS_VALUES[i] is class GEODINO_CLASS_NAMES[i]; "
        "255 = nodata), 2: confidence = top class probability in % (255 = nodata)",
        **tags,
    )
