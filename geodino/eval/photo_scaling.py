"""DN -> reflectance of 16-bit web-format photos (PNG, WebP, ... : `geodino.data.photos.PHOTO_EXTS`) for the probes
and `geodino embed images`, as pretraining reads them.

Such a photo spans 0..65535 by its format, not a sensor's DN: pretraining brings it to 0..255 (/257) for a sensor
of 8-bit DN and scales that (`geodino.data.photos.match_bit_depth`), and reads it by a sensor of 16-bit DN as it is.
The probes and `embed images` took it for 16-bit sensor DN (the dtype rule x/10000, or the backbone's 8-bit scale
refused for values above 255): 6.55 times the reflectance pretraining gave the same file. `InputScaling` groups
these files apart from other uint16 data (`kind_name`) and scales the group by `photo16_rule`; `reflectance` applies
a rule, rounding such a photo to 8 bits first where pretraining does, so that the three readers agree bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

PHOTO16 = "uint16 photo"  # the group of 16-bit web-format photos (the dtype name of other data's groups)
ROUNDED = "round(x/257), "  # how a rule's description starts when it scales 16-bit photos rounded to 8 bits


def kind_name(dtype: Any, path: str | Path) -> str:
    """The name of the group a file's data is scaled with: `PHOTO16` for a uint16 PNG/WebP/... photo, else its
    dtype's name."""
    from geodino.data.photos import PHOTO_EXTS

    dt = np.dtype(dtype)
    return PHOTO16 if dt == np.uint16 and Path(str(path)).suffix.lower() in PHOTO_EXTS else dt.name


def photo16_rule(
    recorded: tuple[np.ndarray, np.ndarray, str] | None, n_bands: int, key: str
) -> tuple[np.ndarray | float, np.ndarray | float, str]:
    """(scale, offset, description) of 16-bit photos of `n_bands` bands, given the backbone's recorded DN scale
    (`recorded`: scale, offset, where it is recorded; None without one) as pretraining reads them: a record of
    8-bit DN (every band 1/255, no offset, as `geodino.data.bit_depth.scales_8bit` tells a sensor) takes the
    photo to a whole 8-bit value first, round(x/257), as pretraining's `match_bit_depth` does; another record that
    fits the bands applies as it is (a sensor of 16-bit DN: the photo's values are its DN); else round(x/257)/255,
    the format's range read as pretraining's default sensor (imagenet) reads it. The rounding (`ROUNDED` in the
    description, done by `reflectance`) moves a value by up to half an 8-bit step (0.002): x/65535 gave 0.50927 for
    a pixel pretraining read as 130/255 = 0.50980. `key` names the setting that overrides it."""
    from geodino.data.bit_depth import scale_misfit
    from geodino.eval.scaling import scaling_text

    if recorded is not None:
        scale, offset, source = recorded
        eight_bit = np.allclose(scale, 1 / 255, rtol=0, atol=1e-9) and not np.any(offset)
        if eight_bit and scale.size in (1, n_bands):
            text = f"{ROUNDED}{scaling_text(scale, offset)} (16-bit photos to 8 bits, then the backbone's DN scale: "
            text += f"{source})"
        elif not scale_misfit(np.uint16, n_bands, scale, offset):
            text = f"{scaling_text(scale, offset)} (the backbone's DN scale: {source})"
        else:
            text = ""
        if text:
            if scale.size > 1 or offset.size > 1:  # per band: broadcast over [C,H,W]
                scale, offset = scale.reshape(-1, 1, 1), offset.reshape(-1, 1, 1)
            return scale, offset, text
    return 1 / 255, 0.0, f"{ROUNDED}x/255 (by format: 16-bit photos span 0..65535, to 8 bits; set {key} if wrong)"


def reflectance(data: np.ndarray, rule: tuple[Any, Any, str]) -> np.ndarray:
    """float32 `data * scale + offset` by `rule` (scale, offset, description): the one place the probes
    (`InputScaling.apply`, the image folders), and `embed images` apply a rule to file values. Under a rule of
    16-bit photos to 8 bits (its description starts with `ROUNDED`) the values are first rounded to whole 8-bit
    values as pretraining's `match_bit_depth` reads the photo, so each reader gives the values pretraining gave."""
    scale, offset, text = rule
    if data.dtype == np.uint16 and text.startswith(ROUNDED):
        data = ((data.astype(np.uint32) + 128) // 257).astype(np.uint8)  # match_bit_depth's rounding
    x = data.astype(np.float32) * np.asarray(scale, dtype=np.float32)
    if np.any(offset):
        x = x + np.asarray(offset, dtype=np.float32)
    return x
