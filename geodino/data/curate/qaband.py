"""A screening-only QA band (`--qa-band NAME`): a band of each raster read for the cloud mask alone.

A backbone takes spectral bands, never a scene classification, so the `qa` cloud rule cannot read SCL, QA60 or
QA_PIXEL from the model's input. `--qa-band` names the quality band of every raster (by its band description, or
its 1-based index); each tile window is read from it separately (the window the image is read at, on the same grid;
nearest resampling when scenes are reprojected, because the codes are categorical) in raw file values, and goes only
to `CloudRule.mask`, not to normalisation or the backbone. A raster without the band, or a QA band that is also among
the bands the backbone reads, is refused in one line.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geodino.errors import InputError

__all__ = ["QA_KINDS", "QaBand", "read_qa_window", "resolve_qa_band", "warped_model_qa"]

QA_KINDS = ("scl", "qa60", "qa_pixel")
"""The QA encodings the `qa` rule decodes (by band name, case-insensitive)."""


class QaBand:
    """The QA band of one raster source: `name` as the user gave it, its `kind` (one of QA_KINDS) and its 1-based
    index in each scene file (`index[path]`)."""

    def __init__(self, name: str, kind: str, index: dict[str, int]) -> None:
        self.name, self.kind, self.index = name, kind, index

    def describe(self) -> str:
        return f"{self.name} ({self.kind})"


def _band_list(descriptions: tuple[str | None, ...]) -> str:
    return ", ".join(f"{i} {d}" if d else f"{i} (unnamed)" for i, d in enumerate(descriptions, start=1))


def resolve_qa_band(name: str, scenes: list[Any], where: str) -> QaBand:
    """The QA band `name` (a band description, case-insensitive, or a 1-based index) in every scene of a raster
    source (`scenes`: `SceneInfo`s), refused in one line naming the file and its bands when one lacks it, when it is
    also read as a model input band, or when its encoding (SCL, QA60, QA_PIXEL) cannot be told from its name."""
    import rasterio

    from geodino.data.archive_bands import qa_kind

    index: dict[str, int] = {}
    kinds: set[str] = set()
    for s in scenes:
        with rasterio.open(s.path) as ds:
            descriptions = tuple(ds.descriptions)
        names = [(d or "").lower() for d in descriptions]
        bands = f"its bands: {_band_list(descriptions)}"
        if name.isdigit():
            i = int(name)
            if not 1 <= i <= len(descriptions):
                raise InputError(
                    f"--qa-band {name} (qa_band= in Python): raster {s.path} has {len(descriptions)} bands ({bands}); "
                    "give the QA band's "
                    "name or 1-based index"
                )
        elif name.lower() in names:
            i = names.index(name.lower()) + 1
        else:
            raise InputError(
                f"--qa-band {name} (qa_band= in Python): raster {s.path} has no band named {name!r} ({bands}); give "
                "the QA band's name "
                "or 1-based index"
            )
        kind = qa_kind(name) or qa_kind(names[i - 1])  # SCL, or SCL_20m (a SAFE band `data stack` named so)
        if kind is None:
            raise InputError(
                f"--qa-band {name} (qa_band= in Python): band {i} of raster {s.path} is "
                f"{descriptions[i - 1] or 'unnamed'}, not SCL, "
                f"QA60 or QA_PIXEL (the codes the qa rule decodes; {bands})"
            )
        if i in s.band_indexes:
            others = [d or str(j) for j, d in enumerate(descriptions, start=1) if j in s.band_indexes and j != i]
            raise InputError(
                f"--qa-band {name} (qa_band= in Python): band {i} of raster {s.path} is also read as a model input "
                "band; leave it out of "
                f"the bands read (e.g. --bands {' '.join(others)})"
            )
        index[s.path] = i
        kinds.add(kind)
    if len(kinds) > 1:
        raise InputError(
            f"--qa-band {name} (qa_band= in Python): the rasters of {where} name it {', '.join(sorted(kinds))}; give "
            "one kind"
        )
    return QaBand(name, kinds.pop(), index)


def warped_model_qa(archive: Any) -> QaBand | None:
    """The QA band among the bands a raster source reads (a sensor naming SCL, QA60 or QA_PIXEL; the one the `qa`
    rule picks) when its scenes are reprojected with another resampling than nearest, else None. The image then holds
    that band interpolated (bilinear QA60 between 0 and 1024 gives 512, 335, ...: codes that are not in the file, and
    cloud bits set or cleared at random), so the qa rule reads its raw values apart, warped with nearest
    (`read_qa_window`), as it reads a screening-only --qa-band."""
    from geodino.data.archive_bands import qa_kind

    if getattr(archive, "crs", None) is None or getattr(archive, "resampling", "nearest") == "nearest":
        return None
    kinds = [qa_kind(b) for b in archive.band_names]
    kind = next((k for k in QA_KINDS if k in kinds), None)
    if kind is None:
        return None
    pos = kinds.index(kind)
    return QaBand(archive.band_names[pos], kind, {s.path: s.band_indexes[pos] for s in archive.scenes})


def read_qa_window(archive: Any, qa: QaBand, sid: int, col: int, row: int, width: int, height: int) -> np.ndarray:
    """The raw QA values [h, w] of scene `sid`'s window (the window `RasterArchive.read` reads, on the same grid:
    reprojected scenes are warped with nearest resampling, so class codes and bit flags stay whole)."""
    from geodino.data.rasters import open_raster, read_window

    s = archive.scenes[sid]
    ds = open_raster(s.path, crs=archive.crs, res=archive.res, resampling="nearest", nodata=s.nodata)
    data, _ = read_window(ds, [qa.index[s.path]], col, row, width, height, nodata=s.nodata)
    return data[0]
