"""The console's `geodino: input DN -> reflectance ...` line: the scaling's description (the run's `input_scale`
metadata, kept as it is: scenes and resumed runs compare it) said with where it came from, in one pair of brackets.
`geodino viz attention` says the backbone's record it reads an input by with the same words (its own way to change
it: viz has no --scale).

Before, the description's own brackets and the origin's followed each other or nested
(`x*0.00392157 (sensor l7, recorded in l7.heads.pth (sidecar of l7.pth)) (default)`), and "default" did not say
whose default: the backbone's record or the input's data type.
"""

from __future__ import annotations

import re

CHANGE = "--sensor/--scale to change"
DEFAULT = "default"  # `how` when neither the user nor the input gave a rule: the backbone's record or the dtype rule


def scale_line(desc: str, how: str, recorded: str | None, change: str = CHANGE) -> str:
    """`desc` (the `input_scale` description) with `how` it was chosen: a default ("default") in one bracket that
    says whose default it is and how to change it; "passed", "declared by the input" or a STAC item's rule after
    it, in one bracket with the description's own origin (`declared by the input: its GDAL scale/offset`).
    `recorded`: the description `recorded_scale` gives for the backbone's record (None without one); a default
    equal to it is the record's, any other default the dtype rule's (`x/255 (uint8)`, `x/10000 (uint16, assumed)`,
    float input as it is). `change`: how to choose another rule, said in the bracket of a default."""
    value, inner = _split(desc)
    if how == DEFAULT and recorded is not None and desc == recorded:
        return f"{value} (the backbone's record: {_place(inner)}; {change})"
    if how == DEFAULT:
        dtype = re.fullmatch(r"(\w+)(, assumed)?", inner)
        if dtype is not None and value.startswith("x/"):
            return f"{value} (the default for {dtype[1]} input{dtype[2] or ''}; {change})"
        return f"{value} ({inner + '; ' if inner else ''}{change})"
    if not inner:
        return f"{desc} ({how})"  # passed, or declared by the input or its STAC item
    # the description's bracket joins the origin's: "x*0.0001-0.1 (declared by the input: its GDAL scale/offset)",
    # "x*0.0001 (passed as band_scale/band_offset)", not two pairs of brackets one after the other
    said = re.sub(r"^the input's ", "its ", inner) if how.startswith("declared by") else inner
    return f"{value} ({how} as {said})" if how == "passed" else f"{value} ({how}: {said})"


def record_said(desc: str) -> str:
    """A `recorded_scale` description in one pair of brackets, for a clause naming the record: "x*0.0001 (sensor
    l7, recorded in l7.heads.pth (sidecar of l7.pth))" -> "x*0.0001 (sensor l7, in l7.heads.pth beside l7.pth)"."""
    value, inner = _split(desc)
    return f"{value} ({_place(inner)})" if inner else value


def _split(desc: str) -> tuple[str, str]:
    """("x*0.0001", "sensor l7, recorded in ...") of "x*0.0001 (sensor l7, recorded in ...)"; (desc, "") when it
    has no bracket (a passed `sensor:l8`, `x*0.0001`)."""
    value, sep, rest = desc.partition(" (")
    return (value, rest[:-1]) if sep and rest.endswith(")") else (desc, "")


def _place(inner: str) -> str:
    """The record's origin without nested brackets: "sensor l7, recorded in l7.heads.pth (sidecar of l7.pth)" ->
    "sensor l7, in l7.heads.pth beside l7.pth"; another origin's bracket becomes a clause ("in x.safetensors,
    safetensors metadata geodino_normalization")."""
    text = re.sub(r"\brecorded in ", "in ", inner)
    text = re.sub(r" \(sidecar of ([^()]+)\)", r" beside \1", text)
    return re.sub(r" \(([^()]+)\)", r", \1", text)
