"""The DN -> reflectance rule an input is read by, as a value (`ScaleRule`): the step itself (`x*0.0001-0.1`,
`x/255`, `sensor:l8`), where it came from, and what that origin has to say (the data type, the record's sensor and
file, the declaring file's kind). Built where the rule is chosen (`geodino.embed.input_scaling`: `input_scaler`,
`recorded_scale`); said two ways from its fields:

- `stored()`: the run's `input_scale` metadata (GEODINO_INPUT_SCALE) and the scale of its resume identity. Resumes
  of older work folders and mosaics of older scenes compare it byte for byte, so it stays as earlier versions wrote
  it (`x*0.00392157 (sensor l7, recorded in l7.heads.pth (sidecar of l7.pth))`, brackets nested and all).
- `said()`: the console's words, one pair of brackets saying where the rule came from (`x*0.00392157 (the
  backbone's record: sensor l7, in l7.heads.pth beside l7.pth; --sensor/--scale to change)`), and `origin_said()`
  the record's part of them, which the probes' rule line and `viz attention` name the record by.

Neither reads text back: the one place our stored text is parsed is where older rasters are read
(`geodino.embed.scene_mosaic.scale_setting`, which compares scenes written by earlier versions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

CHANGE = "--sensor/--scale to change"  # how to choose another rule, said in a default's bracket
FLOAT_AS_IS = "float input used as reflectance"
DECLARER = "the input's "  # how a declared rule's source begins (`geodino.embed.config.DECLARED_BY_FILE`, _CF)
# origin of a rule: the input's data type; the backbone's recorded DN scale; the scale/offset the input declares;
# band_scale/band_offset (the user's, or a STAC item's); the user's --sensor or --scale
Origin = Literal["dtype", "record", "declared", "band", "passed"]


@dataclass(frozen=True)
class ScaleRule:
    """One DN -> reflectance rule and where it came from (fields unused by an origin stay empty)."""

    value: str  # the step: "x*0.0001-0.1", "x/255", "x" (floats as they are), "sensor:l8", "x*0.0001"
    origin: Origin
    source: str = ""  # "declared"/"band": what gives it ("the input's GDAL scale/offset", "band_scale/band_offset")
    dtype: str = ""  # "dtype": the input's data type ("uint8", "uint16", "float32")
    assumed: bool = False  # "dtype": a 16-bit rule the input's type does not settle (warned about)
    sensor: str = ""  # "record": the record's sensor, when its place does not name it already
    place: str = ""  # "record": where the backbone read it, in its words without bracket ("sensor s2", "the backbone")
    record_file: str = ""  # "record": the file the record was read from ("l7.heads.pth"), else ""
    sidecar_of: str = ""  # "record": the weights file that file sits beside ("l7.pth"), else ""
    note: str = ""  # "record": what more the backbone says of the place ("training data config", "passed")

    @classmethod
    def by_dtype(cls, dtype: Any) -> ScaleRule:
        """The dtype rule (`geodino.data.dtype_rule`) as described: x/255 for uint8, x/10000 (assumed) for other
        integers, float input as it is. Types without a rule are refused before (`refuse_without_rule`)."""
        dt = np.dtype(dtype)
        if dt == np.uint8:
            return cls("x/255", "dtype", dtype=dt.name)
        if dt.kind in "iu":
            return cls("x/10000", "dtype", dtype=dt.name, assumed=True)
        return cls("x", "dtype", dtype=dt.name)

    @classmethod
    def of_record(cls, value: str, sensor: str, norm_source: str) -> ScaleRule:
        """The backbone's recorded DN scale `value`, `sensor` when its place does not name it, read from the
        backbone's `norm_source` ("recorded in l7.heads.pth (sidecar of l7.pth): l7 (red, ...)", "sensor s2
        (passed)"; "" for "the backbone"): that is text the backbone loader writes, split here once into its
        place, file and bracket."""
        where = (norm_source or "the backbone").split(":")[0]
        head, sep, rest = where.partition(" (")
        note = rest[:-1] if sep and rest.endswith(")") else ""
        head = head if note else where
        file = head.removeprefix("recorded in ") if head.startswith("recorded in ") else ""
        beside = note.removeprefix("sidecar of ") if note.startswith("sidecar of ") else ""
        place = "" if file else head
        note = "" if beside else note
        return cls(value, "record", sensor=sensor, place=place, record_file=file, sidecar_of=beside, note=note)

    def stored(self) -> str:
        """The metadata's text: "x/255 (uint8)", "x*0.0001 (sensor l7, recorded in l7.heads.pth (sidecar of
        l7.pth))", "x*0.0001-0.1 (the input's GDAL scale/offset)", "sensor:l8"; as earlier versions wrote it."""
        if self.origin == "dtype":
            if np.dtype(self.dtype).kind == "f":
                return f"{self.value} ({FLOAT_AS_IS})"
            return f"{self.value} ({self.dtype}{', assumed' if self.assumed else ''})"
        if self.origin == "record":
            place = f"recorded in {self.record_file}" if self.record_file else self.place
            bracket = f"sidecar of {self.sidecar_of}" if self.sidecar_of else self.note
            return f"{self.value} ({self._sensor()}{place}{f' ({bracket})' if bracket else ''})"
        return f"{self.value} ({self.source})" if self.source else self.value

    def said(self, change: str = CHANGE, by: str = "") -> str:
        """The console's words, in one pair of brackets: a default says whose it is and how to `change` it; a
        rule given says who gave it (`by`: what gave a band_scale/band_offset other than the user, "declared by
        its STAC item"). "x/10000 (the default for uint16 input, assumed; --sensor/--scale to change)"."""
        if self.origin == "dtype":
            if np.dtype(self.dtype).kind == "f":
                return f"{self.value} ({FLOAT_AS_IS}; {change})"
            return f"{self.value} (the default for {self.dtype} input{', assumed' if self.assumed else ''}; {change})"
        if self.origin == "record":
            return f"{self.value} (the backbone's record: {self.origin_said()}; {change})"
        if self.origin == "declared":  # "the input's GDAL scale/offset", said after "declared by the input"
            return f"{self.value} (declared by the input: its {self.source.removeprefix(DECLARER)})"
        if self.origin == "band":
            return f"{self.value} ({by}: {self.source})" if by else f"{self.value} (passed as {self.source})"
        return f"{self.value} (passed)"

    def origin_said(self) -> str:
        """A record's origin in one clause: "sensor l7, in l7.heads.pth beside l7.pth", "in t.pth, training data
        config", "sensor s2, the backbone"; "" for rules of other origins."""
        if self.origin != "record":
            return ""
        place = f"in {self.record_file}" if self.record_file else self.place
        more = f" beside {self.sidecar_of}" if self.sidecar_of else f", {self.note}" if self.note else ""
        return f"{self._sensor()}{place}{more}"

    def _sensor(self) -> str:
        return f"sensor {self.sensor}, " if self.sensor else ""
