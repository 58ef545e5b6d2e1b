"""Can two feature rasters (or a fitted model and a feature raster) be compared? Same backbone, same grid.

The backbone identity is what `geodino embed` records in every feature raster's metadata (COG tags
`GEODINO_*`, Zarr attributes; see `embed/pipeline.py`): the checkpoint fingerprint (sha256 of the weights, or
of the spec for `arch:`), the layers and how they were combined, whether the backbone's final LayerNorm was
applied (`final_norm`) and whether the vectors were scaled to unit length (`l2_normalize`). Vectors from
different weights, layers or normalisations live in different spaces, so a classifier or a distance across them
would be wrong without any error (a model fitted on un-normalised float32 features put every cell of an int8
raster, whose vectors are unit length, into one class).

The storage dtype is not part of the identity: int8 rasters are dequantised and re-normalised on read
(`EmbeddingReader`, the rule in their metadata) and float16 is read as float32, so an int8 raster and a float32
raster with `l2_normalize` on hold the same vectors up to the int8 error bound (<= 0.0079 per component).
"""

from __future__ import annotations

from typing import Any

from geodino.errors import InputError

IDENTITY_KEYS = ("model_fingerprint", "layers", "layer_mode", "final_norm", "l2_normalize")
# compared after the fingerprint, in this order; "not recorded" (an older model file or raster) is a value too
OUTPUT_KEYS = ("layers", "layer_mode", "final_norm", "l2_normalize", "n_bands")
FLAGS = {"final_norm": "embed option norm", "l2_normalize": "embed option --l2"}


def backbone_identity(metadata: dict[str, Any], n_bands: int) -> dict[str, Any]:
    """The metadata that decides whether vectors are comparable, plus the vector length."""
    ident: dict[str, Any] = {k: str(metadata[k]) for k in IDENTITY_KEYS if metadata.get(k) not in (None, "")}
    ident["n_bands"] = int(n_bands)
    ident["model_spec"] = str(metadata.get("model_spec", ""))
    return ident


def _short(v: Any) -> str:
    s = str(v)
    return s[:16] + "..." if len(s) > 19 else s


def check_same_backbone(
    a: dict[str, Any], a_name: str, b: dict[str, Any], b_name: str, *, hint: str, ignore: tuple[str, ...] = ()
) -> None:
    """Raise one line naming the first differing key (fingerprint first) of two identities, with both values.

    A fingerprint known on one side only is refused as well: without it nothing says the vectors match. `ignore`:
    keys that cannot change the caller's result (`change` compares directions: `l2_normalize` is irrelevant).
    """
    fa, fb = a.get("model_fingerprint"), b.get("model_fingerprint")
    if fa != fb:
        if fa and fb:
            what = f"backbone fingerprint {_short(fa)} ({a.get('model_spec') or '?'}) vs {_short(fb)} " + (
                f"({b.get('model_spec') or '?'})"
            )
        else:
            missing = a_name if not fa else b_name
            what = f"{missing} records no backbone fingerprint (GEODINO_MODEL_FINGERPRINT), so it cannot be matched"
        raise InputError(f"{a_name} and {b_name} come from different backbones: {what}; {hint}")
    for key in OUTPUT_KEYS:
        if key in ignore or a.get(key) == b.get(key):
            continue
        va, vb = (x.get(key, "not recorded") for x in (a, b))
        how = f" ({FLAGS[key]})" if key in FLAGS else ""
        raise InputError(f"{a_name} and {b_name} come from different backbone outputs: {key}{how} {va} vs {vb}; {hint}")


def grid_difference(a: Any, b: Any) -> str | None:
    """What differs between the grids of two readers (CRS, size, transform), or None when they are the same.

    The CRS is named short (`crs_label`: a compound or custom CRS was a page of WKT) and the transform as gdalinfo
    gives it (origin, signed pixel size, rotation terms when there are any) at full precision: `.6g` showed a
    northing of 4000004 as 4e+06 on both sides, a south-up grid as cell 80x-80 and a rotated one by its
    pre-rotation scale only (75.18x75.18 for 80 m cells turned 20 degrees, the rotation unsaid)."""
    if (a.crs is None) != (b.crs is None) or (a.crs is not None and a.crs != b.crs):
        from geodino.embed.placement import crs_label

        return f"CRS {crs_label(a.crs)} vs {crs_label(b.crs)}"
    if (a.height, a.width) != (b.height, b.width):
        return f"size {a.width}x{a.height} vs {b.width}x{b.height} cells"
    ta, tb = a.transform, b.transform
    if not ta.almost_equals(tb, precision=1e-6 * max(abs(ta.a), abs(ta.e), 1e-9)):
        return f"transform ({_transform_text(ta)}) vs ({_transform_text(tb)})"
    return None


def _transform_text(t: Any) -> str:
    """An affine transform as gdalinfo names it: origin, pixel size (signed: -y is north-up), rotation terms."""

    def num(v: float) -> str:
        return f"{v:.15g}"

    text = f"origin {num(t.c)},{num(t.f)}, pixel size {num(t.a)},{num(t.e)}"
    if t.b or t.d:
        text += f", rotation terms {num(t.b)},{num(t.d)}"
    return text
