"""The files `embed classify` writes beside its class COG (metrics JSON, fitted model, PNG quick-look, QGIS and
SLD styles): every output checked writable, and none of them an input, before any work (`_check_outputs`), and the
side files written after the map (`_write_side_files`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from geodino.embed import style
from geodino.embed.classifier_file import MODEL_SUFFIX
from geodino.embed.classify_outputs import NODATA, class_entries
from geodino.embed.classify_scores import headline
from geodino.io import atomic_path, check_writable

__all__ = ["sidecars"]


def sidecars(out: str | Path) -> dict[str, Path]:
    """Files written next to the class COG: metrics JSON, model, PNG quick-look, QGIS style, SLD style."""
    out = Path(out)
    return {
        "metrics": out.with_suffix(".metrics.json"),
        "model": out.with_suffix(".model" + MODEL_SUFFIX),
        "png": out.with_suffix(".png"),
        "qml": style.qml_path(out),
        "sld": style.sld_path(out),
    }


def _check_outputs(
    out: str | Path,
    png: str | Path | None,
    save_model: str | Path | None,
    model: Any,
    overwrite: bool,
    reads: dict[str, Any],
) -> tuple[Path, dict[str, Path], Path, Path]:
    """Every output of the run checked writable before any work, and none of them one of the inputs (`reads`): the
    map, its side files and (when fitting, or re-saving a `model` with `save_model`) the model file. Returns the
    map's path, the side files, the PNG and the model file."""
    from geodino.embed.map_outputs import file_name, pam_path
    from geodino.embed.products import check_map_outputs

    saving = model is None or save_model is not None
    side = sidecars(out)
    png = file_name(png, "png", "classify") or side["png"]
    model_out = file_name(save_model, "save_model", "classify") or side["model"]
    check_map_outputs(
        "classify",
        out,
        png=png,
        metrics=side["metrics"],
        style=side["qml"],
        save_model=model_out if saving else None,
        reads=reads,
        **{"attribute table": pam_path(out)},
    )
    out = check_writable(out, overwrite=overwrite)
    for p in (side["metrics"], png) + ((model_out,) if saving else ()):
        check_writable(p, overwrite=overwrite)
    return out, side, png, model_out


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
    """After the map: its QGIS style, the PNG quick-look, the model as a safetensors file (`fitted`: its bundle, None
    when a saved model was applied and not re-saved) and the metrics JSON; `metrics` gains what they are (`model`,
    or `saved_model` when `model` names the model applied)."""
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
        from geodino.embed.classifier_file import save_model

        with atomic_path(model_out, overwrite=True) as tmp:
            save_model(fitted, tmp)
        metrics["saved_model" if "model" in metrics else "model"] = str(model_out)
    with atomic_path(side["metrics"], overwrite=True) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    metrics["metrics"] = str(side["metrics"])
