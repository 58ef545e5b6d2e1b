"""The class map of `embed classify` (`classify.py` fits or loads the classifier): the two-band COG of class values
and confidences (`write_class_map`) and the legend entries its colour table, the .qml and the PNG share."""

from __future__ import annotations

import json
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


def write_class_map(rd: EmbeddingReader, clf: Any, codes: dict[str, int], out: Path, classes: list[str]) -> None:
    """The class COG: band 1 the class value (colour table and RAT), band 2 the top class probability in %."""
    from geodino.embed.products import cog_profile, write_cog

    lut = np.array([codes[str(c)] for c in clf.classes_], np.uint8)

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
        desc="classify",
        source=rd,
        GEODINO_CLASS_NAMES=json.dumps(classes),
        GEODINO_CLASS_VALUES=json.dumps([codes[c] for c in classes]),
        GEODINO_BANDS="1: class (colour table; GEODINO_CLASS_VALUES[i] is class GEODINO_CLASS_NAMES[i]; "
        "255 = nodata), 2: confidence = top class probability in % (255 = nodata)",
    )
