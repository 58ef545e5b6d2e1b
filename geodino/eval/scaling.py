"""DN -> reflectance of the probes' image files, and the one line saying which rule each run used.

`InputScaling` picks, in order, an explicit data_scale/data_offset, the DN scale the backbone's export records, or
the dtype rule (`data_scale`). Shared by the dense probes (`geodino.eval.dense.to_image_tensor`), the class-per-folder
image datasets (`geodino.eval.datasets`) and `geodino embed images`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from geodino.errors import ConfigError
from geodino.eval.layer_choice import backbone_name

SAMPLES_SCALED = "none here: the samples came scaled (train_data/val_data or a dataset adapter)"


def data_scale(dtype: np.dtype, scale: float) -> float:
    """The factor to reflectance: `scale` when set (> 0), else 1/255 for 8-bit, 1/10000 for 16-bit, 1 for floats."""
    if scale > 0:
        return scale
    if dtype == np.uint8:
        return 1 / 255
    if dtype in (np.uint16, np.int16):
        return 1 / 10000
    return 1.0


def scaling_text(scale: np.ndarray | float, offset: np.ndarray | float) -> str:
    """`x*S+O` with one value or a list per band (the offset left out when zero)."""

    def fmt(v: np.ndarray | float) -> str:
        v = np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel()
        return f"{float(v[0]):g}" if v.size == 1 else "[" + ",".join(f"{float(x):g}" for x in v) + "]"

    off = np.atleast_1d(np.asarray(offset, dtype=np.float64)).ravel()
    if not np.any(off):
        return f"x*{fmt(scale)}"
    return f"x*{fmt(scale)}" + (f"{float(off[0]):+g}" if off.size == 1 else f"+{fmt(off)}")


class InputScaling:
    """DN -> reflectance (`x * scale + offset`) for a probe's image files, and which rule each image got.

    In order: an explicit `data_scale` (> 0, with `data_offset`), else the DN scale/offset the backbone's export
    records (what `geodino embed` applies: `geodino.embed.sweep.recorded_scale`) when it fits the images (one
    value or one per band; not uint8 data with a scale for 16-bit DN, nor 16-bit values above 255 with a scale for
    8-bit DN), else by dtype (1/255 for 8-bit, 1/10000 for 16-bit, 1 for floats). Without the record, data of a
    sensor with an offset (Landsat C2 L2: 2.75e-5, -0.2) reached the backbone in other units than it was trained
    on. `what` names the probe in the line `say` prints; `keys` are the config keys of the explicit scale and
    offset, for the descriptions.
    """

    def __init__(
        self,
        backbone: Any = None,
        scale: float = 0.0,
        offset: float = 0.0,
        what: str = "",
        keys: tuple[str, str] = ("data_scale", "data_offset"),
    ) -> None:
        self.scale, self.offset, self.what, self.keys = float(scale), float(offset), what, keys
        self.recorded: tuple[np.ndarray, np.ndarray, str] | None = None
        if backbone is not None and self.scale <= 0:
            from geodino.embed.sweep import recorded_scale

            rec = recorded_scale(backbone)
            if rec is not None:
                where = rec[2].split(" (", 1)[1].removesuffix(")") if " (" in rec[2] else ""  # sensor, file
                self.recorded = (rec[0], rec[1], where or f"backbone {backbone_name(backbone)}")
        self.used: dict[str, None] = {}  # the rules applied so far, in order (a dict as an ordered set)

    @classmethod
    def of(cls, cfg: Any, backbone: Any = None, what: str = "") -> InputScaling:
        """The rule of a probe config's `data_scale`/`data_offset` keys and the backbone's record."""
        return cls(backbone, getattr(cfg, "data_scale", 0.0), getattr(cfg, "data_offset", 0.0), what)

    def rule(self, data: np.ndarray) -> tuple[np.ndarray | float, np.ndarray | float, str]:
        """(scale, offset, description) for `data` [C,H,W] in file units (after band selection)."""
        if self.scale > 0:
            keys = self.keys[0] + (f", {self.keys[1]}" if self.offset else "")
            return self.scale, self.offset, f"{scaling_text(self.scale, self.offset)} ({keys})"
        why = ""
        if self.recorded is not None:
            scale, offset, source = self.recorded
            why = self._misfit(data, scale, offset)
            if not why:
                text = f"{scaling_text(scale, offset)} (the backbone's DN scale: {source})"
                if scale.size > 1 or offset.size > 1:  # per band: broadcast over [C,H,W]
                    scale, offset = scale.reshape(-1, 1, 1), offset.reshape(-1, 1, 1)
                return scale, offset, text
        factor = data_scale(data.dtype, 0.0)
        rule = {1 / 255: "x/255", 1 / 10000: "x/10000"}.get(factor, "x")
        text = f"{rule} (by dtype: {data.dtype.name}{' used as reflectance' if factor == 1.0 else ''}"
        if self.recorded is not None:
            scale, offset, source = self.recorded
            text += f"; the backbone's DN scale {scaling_text(scale, offset)} ({source}) does not fit: {why}"
        return factor, 0.0, text + f"; set {self.keys[0]} if wrong)"

    @staticmethod
    def _misfit(data: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> str:
        """Why a recorded scale does not fit `data` ("" when it does): `data.bit_depth.scale_misfit`."""
        from geodino.data.bit_depth import scale_misfit

        top = int(data.max()) if data.dtype in (np.uint16, np.int16) and data.size else None
        return scale_misfit(data.dtype, data.shape[0], scale, offset, top)

    def apply(self, data: np.ndarray) -> Tensor:
        """[C,H,W] float32 reflectance of `data` (file units; NaN -> 0); the rule is noted for `describe`."""
        scale, offset, text = self.rule(data)
        self.used.setdefault(text, None)
        x = torch.from_numpy(np.ascontiguousarray(data).astype(np.float32))
        x = x * torch.as_tensor(np.asarray(scale, dtype=np.float32))
        if np.any(offset):
            x = x + torch.as_tensor(np.asarray(offset, dtype=np.float32))
        return torch.nan_to_num(x)

    def describe(self, default: str = SAMPLES_SCALED) -> str:
        """The rules used so far, '; '-joined (`default` when no image file was scaled: the samples came scaled)."""
        return "; ".join(self.used) or default

    def say(self) -> str:
        """Print `<what>: input scaling <rules>` to stderr when image files were scaled (once, at the end of a
        run: a failed run prints only its error); returns `describe()` for the metrics JSON."""
        if self.used:
            import sys

            print(f"{self.what or 'probe'}: input scaling {self.describe()}", file=sys.stderr)
        return self.describe()


def check_data_offset(scale: float, offset: float, keys: tuple[str, str] = ("data_scale", "data_offset")) -> None:
    """Refuse an offset without a scale (`keys` name them): the offset belongs to an explicit DN -> reflectance
    rule, and alone it would be added to data scaled by another rule."""
    if offset and scale <= 0:
        s, o = keys
        raise ConfigError(
            f"{o}={offset:g} needs {s}: set {s} to the DN -> reflectance factor too "
            f"(e.g. {s}=2.75e-5, {o}=-0.2 for Landsat C2 L2), or drop {o}"
        )
