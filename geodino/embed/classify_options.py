"""The options of `embed classify` checked before any file is read: the numeric ones as whole numbers in range, and
which of them a saved `--model` reads. A model is applied as it was fitted, so the fitting options (`--method`,
`--neighbors`, `--folds`, `--cv-gap`, and `--save-model` but for an older geodino's pickled `.joblib` model, which it
re-saves as a safetensors file) given with `--model` are refused in one line (they were ignored silently:
`--model M --method knn` mapped with M's logistic regression); `--column`, `--layer`,
`--max-cells` and `--seed` (the test cells' draw) read the `--test` layer only, so with `--model` they need `--test`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geodino.errors import ConfigError

METHODS = ("logreg", "knn")


def check_model_mix(model: str | Path | None, test: Any, values: dict[str, Any]) -> None:
    """Refuse a fitting option given with a saved `model` (`values`: keyword -> value, None when not given), and
    `column`/`layer`/`max_cells`/`seed` without `test`, which is all they read then."""
    if model is None:
        return
    fitting = {"method": "--method", "neighbors": "--neighbors", "folds": "--folds", "cv_gap": "--cv-gap"}
    for key, flag in fitting.items():
        if values.get(key) is not None:
            raise ConfigError(
                f"{flag} {values[key]} sets how a model is fitted, and --model {model} is applied as it was "
                f"fitted: drop {flag}, or fit a new model: geodino embed classify FEATURES LABELS --column NAME "
                f"{flag} {values[key]} ({key}= in Python)"
            )
    if values.get("save_model") is not None and Path(model).suffix.lower() != ".joblib":  # .joblib: re-saved
        raise ConfigError(
            f"--save-model {values['save_model']} saves a fitted model, and --model {model} fits none (it is applied "
            "as saved): drop --save-model (save_model= in Python)"
        )
    if test is None:
        test_only = {"column": "--column", "layer": "--layer", "max_cells": "--max-cells", "seed": "--seed"}
        for key, flag in test_only.items():
            if values.get(key) is not None:
                raise ConfigError(
                    f"{flag} {values[key]} with --model {model} applies to a --test layer only, and none is given: "
                    f"add --test FILE or drop {flag} ({key}= in Python)"
                )


def check_options(
    folds: Any, neighbors: Any, max_cells: Any, cv_gap: Any, seed: Any, method: Any
) -> tuple[int, int, int, int, int, str]:
    """The numeric classify options as ints, read as YAML and the CLI read them (`whole_number`: 5, 5.0, "5" and
    numpy integers alike), and the method (None: logreg), or one line for one that is not a whole number or is out
    of range, naming the CLI flag and the keyword (before any file is read)."""
    from geodino.config import whole_number

    given = neighbors is not None  # None: not given (argparse too), 5 for knn; logreg has no neighbours to set
    method = "logreg" if method is None else method
    folds, neighbors = (
        whole_number(5 if folds is None else folds, "folds", 5),
        whole_number(5 if neighbors is None else neighbors, "neighbors", 5),
    )
    max_cells = whole_number(1000 if max_cells is None else max_cells, "max_cells", 1000)
    cv_gap = whole_number(1 if cv_gap is None else cv_gap, "cv_gap", 1)
    seed = whole_number(0 if seed is None else seed, "seed", 0)
    if method not in METHODS:
        raise ConfigError(f"--method {method!r} is not one of {', '.join(METHODS)} (method= in Python)")
    if folds < 2:
        raise ConfigError(
            f"--folds {folds}: cross-validation needs at least 2 folds (default 5); a class drawn in one place only "
            "skips the CV with a warning by itself (folds= in Python)"
        )
    if neighbors < 1:
        raise ConfigError(
            f"--neighbors {neighbors}: the kNN classifier needs at least 1 neighbour (default 5; neighbors= in Python)"
        )
    if given and method != "knn":  # --neighbors 3 with the default logreg was ignored silently
        raise ConfigError(
            f"--neighbors {neighbors} applies to --method knn only ({method} has no neighbours); add --method knn or "
            "drop --neighbors (method=/neighbors= in Python)"
        )
    if max_cells < 1:
        raise ConfigError(
            f"--max-cells {max_cells}: sample at least 1 cell per label polygon (default 1000; max_cells= in Python)"
        )
    if cv_gap < 0:
        raise ConfigError(
            f"--cv-gap {cv_gap}: give a distance in cells >= 0 (default 1; 0 joins only shared cells; cv_gap= in "
            "Python)"
        )
    if seed < 0:
        raise ConfigError(f"--seed {seed}: give a whole number >= 0 (default 0; seed= in Python)")
    return folds, neighbors, max_cells, cv_gap, seed, method
