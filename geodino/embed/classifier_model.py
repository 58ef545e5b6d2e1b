"""The saved `embed classify` model (a safetensors file, `classifier_file.py`: classifier arrays, classes, codes,
backbone identity, where it was fitted): loading it, an older geodino's joblib pickle too (with a warning: a pickle can
run code), and completing the identity of a model saved before normalisation was recorded, so `--model` is matched
to the backbone, layers and normalisation of the raster it is applied to. Completing an old model's identity and
loading a pickle are each a `UserWarning` (`warnings.warn`; the command line shows it as one line
"geodino: warning: ...")."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from geodino.embed.classifier_file import MODEL_KIND, MODEL_SUFFIX, read_model
from geodino.embed.compat import backbone_identity
from geodino.embed.writers import EmbeddingReader
from geodino.errors import InputError, one_line

__all__ = ["MODEL_KIND", "PICKLE_KIND", "PICKLE_SUFFIX", "load_model", "pickle_warning"]

PICKLE_KIND = "geodino.embed.classifier/1"
"""The kind of the joblib pickles geodino saved before its models were safetensors files."""
PICKLE_SUFFIX = ".joblib"


def _identity(rd: EmbeddingReader) -> dict[str, Any]:
    return backbone_identity(rd.metadata, rd.count)


def load_model(path: str | Path, *, warn: bool = True) -> dict[str, Any]:
    """A model saved by `classify_map`: a safetensors file (no code runs), or, named `.joblib`, the pickle an older
    geodino saved, loaded with a warning (`warn`; `pickle_warning`: unpickling runs whatever the file says, so only
    load files you trust). A file of any other name is never unpickled."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"model file {path} does not exist; fit one with `geodino embed classify FEATURES LABELS`")
    what = (
        f"{path} is not a model written by `geodino embed classify` (a {MODEL_SUFFIX} file, or an older geodino's "
        f"{PICKLE_SUFFIX}); pass the MAP.model{MODEL_SUFFIX} that `geodino embed classify FEATURES LABELS --column C "
        "--out MAP.tif` saved (or its --save-model path)"
    )
    if path.suffix.lower() != PICKLE_SUFFIX:
        return read_model(path, what)
    model = _load_pickle(path, what)
    if warn:
        pickle_warning(path)
    return model


def pickle_warning(path: str | Path, saved_as: str | Path | None = None) -> None:
    """Warn (one line) when `path` is an older geodino's pickled model, saying how to re-save it (or, `saved_as`,
    that this run did); `classify_map` warns once the model passed its checks, so a refusal stays one line."""
    path = Path(path)
    if path.suffix.lower() != PICKLE_SUFFIX:
        return
    then = (
        f"this run saved it as {saved_as} (safetensors, no code): pass that from now on"
        if saved_as is not None
        else f"save it as a safetensors model (no code) with --save-model {path.with_suffix(MODEL_SUFFIX)} on this run "
        "(save_model= in Python), and pass that from now on"
    )
    warnings.warn(
        f"model {path} is a pickle (joblib, as geodino saved models before): loading one can run any code, so load "
        f"only files you trust; {then}",
        stacklevel=3,
    )


def _load_pickle(path: Path, what: str) -> dict[str, Any]:
    """The bundle of an older geodino's joblib model, or one line."""
    import joblib

    try:
        model = joblib.load(path)
    except (ImportError, AttributeError) as exc:  # a pickle of classes this environment lacks
        raise InputError(
            f"cannot load model {path}: {one_line(exc)}; it was saved with other versions of its "
            "packages (scikit-learn, geodino): refit it here with `geodino embed classify FEATURES LABELS`"
        ) from exc
    except Exception as exc:  # not a pickle at all: pickle's own message is about its internals
        raise InputError(what) from exc
    if not isinstance(model, dict) or model.get("kind") != PICKLE_KIND:
        raise InputError(what)
    return model


NORM_KEYS = ("final_norm", "l2_normalize")
"""Identity keys a model records since the GIS audit (e835d36); older models lack both."""


def _complete_old_identity(bundle: dict[str, Any], path: Path, target: dict[str, Any]) -> None:
    """Give a model saved before its identity recorded `final_norm` and `l2_normalize` the values of the feature
    raster it was fitted on (`fitted_on`), when that raster is still there with the model's backbone, layers and
    feature count (a `UserWarning` says so); otherwise one line saying how to fit it again. Without them the model
    cannot be matched to a raster that records them (a float model on unit-length vectors put every cell into one
    class)."""
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
    warnings.warn(
        f"model {path} predates recorded normalisation; using final_norm={recorded['final_norm']} "
        f"and l2_normalize={recorded['l2_normalize']} from {source}, the raster it was fitted on",
        stacklevel=2,
    )
