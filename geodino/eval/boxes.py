"""Detection boxes: reading Pascal VOC xml, COCO json and CSV annotations, checking them, cutting them to tiles.

Boxes are xyxy pixel coordinates of their image. CSV files have `xmin,ymin,xmax,ymax,label` and an optional
`image_path` column (as DeepForest writes; a 0,0,0,0 row is an image without objects). Used by `eval/detection.py`.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from geodino.errors import InputError, plural
from geodino.eval import dense

if TYPE_CHECKING:
    from torch import Tensor

BOX_SUFFIXES = (".xml", ".json", ".csv")


@dataclass
class Boxes:
    """Boxes of one image: xyxy pixels [N,4], label names, and which are left out of scoring (`ignore`)."""

    boxes: np.ndarray
    labels: list[str]
    source: str = ""
    ignore: np.ndarray | None = None  # [N] bool: Pascal VOC `difficult`, COCO `iscrowd`; None: none

    def ignored(self) -> np.ndarray:
        """[N] bool: the boxes scoring ignores (a detection there is neither a true nor a false positive)."""
        return np.zeros(len(self.boxes), bool) if self.ignore is None else np.asarray(self.ignore, bool)


def _flag(text: str | None) -> bool:
    return (text or "0").strip().lower() not in ("", "0", "false")


def read_voc(path: Path) -> dict[str, Boxes]:
    """Pascal VOC xml: one image (`<filename>`), `<object><name>` and `<bndbox>` in pixels; `<difficult>1` objects
    are ignored in scoring, as the VOC protocol does.

    Coordinates are taken as written, as continuous xyxy pixels, as the DIOR readers of torchgeo
    (`datasets/dior.py`) and BboxToolkit (OBBDetection's `DIORio.py`) and DeepForest (whose CSV of the same NEON
    crowns holds the same numbers) read them; no 1 is subtracted. The VOC devkit defines them as 1-based inclusive
    pixels, and the generic VOC readers follow it: detectron2 subtracts 1 from xmin/ymin (the box covers
    [xmin - 1, xmax]), mmdetection's `XMLDataset` subtracts 1 from all four and scores with +1 widths. EO sets made
    with annotation tools (LabelImg starts at 1), DIOR included, do not state which they mean: read as written,
    such a box may sit 1 px right/down of the object, 1 px narrower and shorter. Training and scoring use the same
    frame; for the devkit's IoU on such data set `voc_inclusive_pixels` (`detection_voc`)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise InputError(f"cannot parse Pascal VOC file {path}: {exc}") from exc
    name = (root.findtext("filename") or path.stem).strip()
    boxes, labels, difficult = [], [], []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            raise InputError(f"{path}: an <object> has no <bndbox>; fix the annotation")
        try:
            boxes.append([float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: a <bndbox> lacks numeric xmin/ymin/xmax/ymax") from exc
        labels.append((obj.findtext("name") or "object").strip())
        difficult.append(_flag(obj.findtext("difficult")))
    ignore = np.asarray(difficult, bool) if any(difficult) else None
    return {name: Boxes(np.asarray(boxes, dtype=np.float32).reshape(-1, 4), labels, str(path), ignore)}


def read_coco(path: Path) -> dict[str, Boxes]:
    """COCO json: `images` (file_name), `annotations` (bbox = x, y, width, height), `categories` (name);
    `iscrowd` annotations are ignored in scoring, as COCOeval does. Images are keyed by file name, or by their whole
    `file_name` (a/x.tif) where two entries in different subfolders share a name (`coco_keys`; `match_boxes`)."""
    data: Any = None
    try:
        data = json.loads(path.read_text())
        images = {im["id"]: im["file_name"] for im in data["images"]}
        cats = {c["id"]: c["name"] for c in data.get("categories", [])}
        key = coco_keys(images.values())
        out: dict[str, Boxes] = {key[n]: Boxes(np.zeros((0, 4), np.float32), [], str(path)) for n in images.values()}
        per: dict[str, list] = {key[n]: [] for n in images.values()}
        for a in data.get("annotations", []):
            x, y, w, h = (float(v) for v in a["bbox"])
            per[key[images[a["image_id"]]]].append(
                ([x, y, x + w, y + h], cats.get(a["category_id"], str(a["category_id"])), bool(a.get("iscrowd", 0)))
            )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(data, dict) and data.get("type") == "FeatureCollection":
            raise InputError(_not_a_box_file(path)) from exc
        raise InputError(
            f"{path} is not a COCO detection json ({type(exc).__name__}: {exc}); need images/annotations"
        ) from exc
    for name, items in per.items():
        if items:
            crowd = np.asarray([c for _, _, c in items], bool)
            out[name] = Boxes(
                np.asarray([b for b, _, _ in items], np.float32),
                [lab for _, lab, _ in items],
                str(path),
                crowd if crowd.any() else None,
            )
    return out


def _not_a_box_file(path: Path) -> str:
    """The refusal of a box file of another kind: a vector file (GeoJSON, GeoPackage, ...) holds map geometries,
    not the pixel boxes the probe reads."""
    kinds = "Pascal VOC .xml, COCO .json or CSV (xmin,ymin,xmax,ymax,label[,image_path])"
    from geodino.eval.vector_masks import VECTOR_SUFFIXES

    if path.suffix.lower() in VECTOR_SUFFIXES:
        return (
            f"box annotation file {path} is a vector file of map geometries; the detection probe reads boxes in "
            f"image pixels from {kinds}: convert each box's map bounds to its image's pixel columns and rows (e.g. "
            "rasterio: col, row = ~src.transform * (x, y)) and write them as such a CSV"
        )
    return f"box annotation file {path} ({path.suffix or 'no suffix'}) is not one the probe reads: {kinds}"


def coco_keys(file_names: Iterable[str]) -> dict[str, str]:
    """The table key of each COCO `file_name`: its file name (x.tif), or the whole file_name with / separators
    (a/x.tif) when another entry in another subfolder has the same file name: keyed by name alone, the two images'
    boxes were merged into one."""
    names = {str(n) for n in file_names}
    count = Counter(PurePosixPath(n.replace("\\", "/")).name for n in names)
    out = {}
    for n in names:
        posix = PurePosixPath(n.replace("\\", "/"))
        out[n] = posix.name if count[posix.name] == 1 else str(posix)
    return out


def read_csv_boxes(path: Path, default_image: str | None = None) -> dict[str, Boxes]:
    """CSV with xmin,ymin,xmax,ymax,label (+ optional image_path); without image_path the rows belong to the
    image of the same stem as the CSV (or `default_image`). A row of four zeros lists an image with no objects (a
    negative image, as DeepForest writes it) and adds no box. Images are keyed as COCO's (`coco_keys`): by file
    name, or by the whole image_path (a/x.tif) where two rows' paths share a name in different folders."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except UnicodeDecodeError as exc:  # a binary file (a GeoPackage) or a CSV saved in another encoding
        raise InputError(
            f"{path} is not a UTF-8 text CSV ({exc.reason} at byte {exc.start}); save the boxes as a UTF-8 CSV with "
            "columns xmin,ymin,xmax,ymax,label"
        ) from exc
    need = {"xmin", "ymin", "xmax", "ymax"}
    if rows and not need <= set(rows[0]):
        has = ", ".join(k for k in rows[0] if k is not None)  # None: a row with more fields than the header
        raise InputError(f"{path} must have columns xmin,ymin,xmax,ymax,label (has {has})")
    if rows:
        _check_spellings(path, [k for k in rows[0] if k is not None], default_image)
    raw = [str(row.get("image_path") or default_image or path.stem).strip() for row in rows]
    key = coco_keys(raw)
    per: dict[str, tuple[list, list]] = {}
    for i, (row, image) in enumerate(zip(rows, raw)):
        name = key[image]
        try:
            box = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path} row {i + 2}: box coordinates must be numbers") from exc
        per.setdefault(name, ([], []))
        if not any(box):  # DeepForest's row for an image without objects (0,0,0,0): listed, no box
            continue
        per[name][0].append(box)
        per[name][1].append((row.get("label") or "object").strip())
    return {k: Boxes(np.asarray(b, np.float32).reshape(-1, 4), lab, str(path)) for k, (b, lab) in per.items()}


# other tools' names for the two optional columns: read as extra columns, an `image` column left every row on the
# image named like the CSV ('none of the images has boxes') and a `class` column made every box one 'object'
_SPELLINGS = {
    "image_path": ("image", "filename", "file_name", "file", "path", "image_name", "img", "image_file"),
    "label": ("class", "class_name", "category", "category_name", "name", "labels", "classname"),
}


def _check_spellings(path: Path, columns: list[str], default_image: str | None) -> None:
    """Refuse (one line) a CSV naming its images or classes in a column of another tool's spelling."""
    have = {c.strip().lower(): c for c in columns}
    for key, others in _SPELLINGS.items():
        found = [have[o] for o in others if o in have]
        if key in have or not found:
            continue
        unread = (
            f"every row is read as a box of {default_image or path.stem + '.*'}"
            if key == "image_path"
            else "every box is read as one class, 'object'"
        )
        raise InputError(
            f"{path} has a column {found[0]!r} but no {key!r}, so {unread}; rename the column to {key} "
            "(columns: xmin,ymin,xmax,ymax,label[,image_path])"
        )


def read_boxes(paths: Sequence[str | Path]) -> BoxTable:
    """Boxes per image from VOC/COCO/CSV files (or folders of them), keyed by file name, or by a path ending in
    it where one name belongs to images in different folders (`coco_keys`; VOC: `_voc_keys`); `match_boxes`
    finds an image's entry. The same key in two files: their boxes are concatenated. Files that hold no box at
    all are refused: before, a header-only CSV was blamed on file names and an empty VOC/COCO set trained a
    detector on nothing and scored NaN."""
    out = BoxTable()
    read: list[tuple[Path, dict[str, Boxes]]] = []
    for p in dense.list_files(list(paths), BOX_SUFFIXES, "box annotation"):
        suffix = p.suffix.lower()
        if suffix not in BOX_SUFFIXES:  # a file named in the config: read as CSV, a GeoPackage raised a traceback
            raise InputError(_not_a_box_file(p))
        read.append((p, read_voc(p) if suffix == ".xml" else read_coco(p) if suffix == ".json" else read_csv_boxes(p)))
    voc = _voc_keys([(p, name) for p, found in read if p.suffix.lower() == ".xml" for name in found])
    for p, found in read:
        for name, b in found.items():
            name = voc.get((p, name), name)
            if name in out:  # the same image in two files: concatenate, less the boxes the first already has
                prev = out[name]
                b = _new_boxes(prev, b, name)
                ignore = np.concatenate([prev.ignored(), b.ignored()])
                out[name] = Boxes(
                    np.concatenate([prev.boxes, b.boxes]),
                    prev.labels + b.labels,
                    prev.source,
                    ignore if ignore.any() else None,
                )
            else:
                out[name] = b
    if not any(len(b.boxes) for b in out.values()):  # a header-only CSV, VOC/COCO files without objects
        raise InputError(
            f"the box annotations {[str(p) for p in paths]} hold no box for any image; a detector needs objects to "
            "train and score on: give the annotation files of the images (images without objects may sit beside)"
        )
    return out


def _new_boxes(prev: Boxes, b: Boxes, name: str) -> Boxes:
    """`b` without the boxes `prev` (of the same image, from another file) already holds with the same label and
    ignore flag. One annotation in two formats in one folder (DeepForest's CSV beside the Pascal VOC xml of the same
    crowns) gave every object twice: trained twice and, scored, one of each pair a missed object. Warns."""
    import warnings

    seen = {(tuple(x), lab, ig) for x, lab, ig in zip(prev.boxes.tolist(), prev.labels, prev.ignored().tolist())}
    rows = list(zip(b.boxes.tolist(), b.labels, b.ignored().tolist()))
    keep = [(tuple(x), lab, ig) not in seen for x, lab, ig in rows]
    if all(keep):
        return b
    warnings.warn(
        f"{sum(not k for k in keep)} of the {len(rows)} boxes of {name} in {b.source} are already given in "
        f"{prev.source} (same box and label): counted once; point the boxes at one of the two files",
        stacklevel=3,
    )
    k = np.asarray(keep, bool)
    ignore = b.ignored()[k]
    return Boxes(b.boxes[k], [lab for lab, kk in zip(b.labels, keep) if kk], b.source, ignore if ignore.any() else None)


def _voc_keys(entries: list[tuple[Path, str]]) -> dict[tuple[Path, str], str]:
    """The key of each (VOC xml, `<filename>`): the file name, or, where xml files in different folders name the
    same file (ann/a/x.xml and ann/b/x.xml both for x.tif), the xml's folder below the common folder of those xml
    files plus the name (a/x.tif, b/x.tif): the images are taken to sit in folders named as the xml folders.
    Keyed by name alone, the two images' boxes were merged into one."""
    import os

    folders: dict[str, set[Path]] = {}
    for p, name in entries:
        folders.setdefault(name, set()).add(p.resolve().parent)
    out = {}
    for p, name in entries:
        if len(folders[name]) < 2:
            continue
        root = os.path.commonpath([str(f) for f in folders[name]])
        rel = PurePosixPath(Path(os.path.relpath(p.resolve().parent, root)).as_posix())
        out[(p, name)] = name if str(rel) == "." else str(rel / name)
    return out


def _tail(key: str) -> tuple[str, ...]:
    """The folder parts of a key (a/x.tif: ("a",)), without a leading / or ../ (they cannot end an image path)."""
    parts = PurePosixPath(key).parts[:-1]
    while parts and parts[0] in ("/", "..", "."):
        parts = parts[1:]
    return parts


def _kind(keys: list[str], table: dict[str, Boxes]) -> str:
    kinds = {".json": "COCO", ".xml": "VOC", ".csv": "CSV"}
    return "/".join(sorted({kinds.get(Path(table[k].source).suffix.lower(), "annotated") for k in keys}))


def _pick(image: Path, keys: list[str], table: dict[str, Boxes]) -> Boxes | None:
    """Of the keys naming the image (by name or stem): a bare key alone, else the one key whose folders end the
    image's path; none or several of them: refused in one line."""
    if not keys:
        return None
    nested = [k for k in keys if "/" in k]
    bare = [k for k in keys if "/" not in k]
    if not nested:
        return table[bare[-1]]
    folders = image.parent.parts
    hits = [k for k in nested if (t := _tail(k)) and folders[-len(t) :] == t] + bare[-1:]
    if len(hits) == 1:
        return table[hits[0]]
    listed = ", ".join(sorted(nested + bare))
    if not hits:
        raise InputError(
            f"{image} matches none of the {_kind(nested, table)} images {listed}: their paths differ only in the "
            "folder, so give the images in those folders (paths ending in the annotated path)"
        )
    raise InputError(
        f"{image} matches several of the {_kind(hits, table)} images {', '.join(sorted(hits))}: its path ends in "
        "each, so whose boxes it has is unknown; make the annotated paths differ (e.g. give the whole path)"
    )


class BoxTable(dict):
    """`read_boxes`' table (key -> Boxes) with its keys indexed by file name and stem, built once on first use, so
    matching thousands of images is not a scan of the table per image. Do not add keys after matching."""

    _index: tuple[dict[str, list[str]], dict[str, list[str]]] | None = None

    def index(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        if self._index is None:
            self._index = _index_keys(self)
        return self._index


def _index_keys(keys: Iterable[str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    names: dict[str, list[str]] = {}
    stems: dict[str, list[str]] = {}
    for k in keys:
        posix = PurePosixPath(k)
        names.setdefault(posix.name, []).append(k)
        stems.setdefault(posix.stem, []).append(k)
    return names, stems


BoxIndex = tuple[dict[str, list[str]], dict[str, list[str]]]
"""A box table's keys by file name and by stem (`box_index`)."""


def box_index(table: dict[str, Boxes]) -> BoxIndex:
    """The keys of `table` by file name and by stem, for `match_boxes(..., index=)`: a `BoxTable` (what `read_boxes`
    returns) keeps its own; a plain dict's is built here, once for all the images matched against it."""
    return table.index() if isinstance(table, BoxTable) else _index_keys(table)


def match_boxes(image: Path, table: dict[str, Boxes], index: BoxIndex | None = None) -> Boxes | None:
    """The boxes of an image: the entry of its file name (a key with folders, a/x.tif from `coco_keys` or
    `_voc_keys`, where that names the image only if its path ends in it), else of its stem (a.tif with a.xml / a.csv
    rows of a.png). An image whose name fits several entries and none or more than one of them by path is refused:
    whose boxes it has is unknown. `index`: `box_index(table)`, to match many images against a plain dict without
    indexing its keys per image (a `BoxTable` indexes itself once)."""
    names, stems = index if index is not None else box_index(table)
    if image.name in names:
        return _pick(image, names[image.name], table)
    return _pick(image, stems.get(image.stem, []), table)


def warn_unannotated(images: Sequence[Path], boxes: Sequence[str | Path]) -> None:
    """One warning naming the listed images that no annotation entry names: the probe leaves them out (an image
    without objects needs an entry: a 0,0,0,0 CSV row, a VOC xml or COCO image without objects). Before, they were
    left out without a word, so a misnamed annotation file shrank the training set unseen."""
    if not images:
        return
    import warnings

    shown = ", ".join(p.name for p in images[:3]) + (", ..." if len(images) > 3 else "")
    has, is_ = ("has", "is") if len(images) == 1 else ("have", "are")
    warnings.warn(
        f"detection: {plural(len(images), 'listed image')} ({shown}) {has} no entry in the box annotations "
        f"{[str(b) for b in boxes]} and {is_} left out; name their annotations like the images, or list an image "
        "without objects with a 0,0,0,0 CSV row (or a VOC/COCO entry without objects)",
        stacklevel=3,
    )


def check_boxes(b: Boxes, width: int, height: int, where: str, tol: float = 1.0) -> np.ndarray:
    """Refuse degenerate boxes and boxes outside the image (beyond `tol` px); clip the small overshoots."""
    if len(b.boxes) == 0:
        return b.boxes
    x0, y0, x1, y1 = b.boxes.T
    bad = (x1 <= x0) | (y1 <= y0)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(
            f"{where}: box {i} {b.boxes[i].tolist()} has xmax <= xmin or ymax <= ymin; boxes are xmin,ymin,xmax,ymax"
        )
    out = (x0 < -tol) | (y0 < -tol) | (x1 > width + tol) | (y1 > height + tol)
    if out.any():
        i = int(np.argmax(out))
        raise InputError(
            f"{where}: box {i} {b.boxes[i].tolist()} lies outside the {width}x{height} px image; boxes must be "
            "pixel coordinates of this image (convert map coordinates first)"
        )
    return np.clip(b.boxes, 0, [width, height, width, height]).astype(np.float32)


# ----------------------------------------------------------------------------------------------- tiles


def tile_sample(
    s: dict[str, Any], r: int, c: int, size: int, min_visible: float, fill: float | Tensor = 0.0
) -> dict[str, Any]:
    """A tile of a sample with the boxes cut to it: kept when >= min_visible of their area is inside, else (when a
    part of them is inside) listed as `ignore_boxes`/`ignore_labels`: scoring treats those as COCO crowd regions,
    so a detection of an object the tile edge cut is neither a true nor a false positive. The image is padded
    past its edge with `fill` (the probe passes the band means, `dense.pad_fill`: 0 once normalised). The sample's own
    ignored boxes (VOC difficult, COCO crowd) stay ignored in every tile they reach."""
    import torch

    img = dense.crop_pad(s["image"], r, c, size, fill)
    h, w = s["image"].shape[-2:]
    b = _to_tile(s["boxes"], r, c, size, h, w)
    area = (s["boxes"][:, 2] - s["boxes"][:, 0]) * (s["boxes"][:, 3] - s["boxes"][:, 1])
    inside = ((b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)) / area.clamp_min(1e-6)
    visible = (b[:, 2] > b[:, 0] + 1) & (b[:, 3] > b[:, 1] + 1)
    keep = (inside >= min_visible) & visible
    cut = visible & ~keep
    ignore_boxes, ignore_labels = b[cut], s["labels"][cut]
    if "ignore_boxes" in s and len(s["ignore_boxes"]):  # the sample's own (VOC difficult, COCO crowd): any part
        ib = _to_tile(s["ignore_boxes"], r, c, size, h, w)
        seen = (ib[:, 2] > ib[:, 0]) & (ib[:, 3] > ib[:, 1])
        ignore_boxes = torch.cat([ignore_boxes, ib[seen]])
        ignore_labels = torch.cat([ignore_labels, s["ignore_labels"][seen]])
    tile = {
        "image": img,
        "boxes": b[keep],
        "labels": s["labels"][keep],
        "ignore_boxes": ignore_boxes,
        "ignore_labels": ignore_labels,
        "origin": (r, c),
    }
    if "name" in s:  # samples given to run_detection need not be named (the COCO outputs name them by position)
        tile["name"] = s["name"]
    return tile


def _to_tile(boxes: Tensor, r: int, c: int, size: int, h: int, w: int) -> Tensor:
    """Image-pixel boxes in the coordinates of the tile at (r, c), clipped to the tile and the image."""
    b = boxes.clone()
    b[:, [0, 2]] = (b[:, [0, 2]] - c).clamp(0, size)
    b[:, [1, 3]] = (b[:, [1, 3]] - r).clamp(0, size)
    b[:, [0, 2]] = b[:, [0, 2]].clamp(max=w - c)
    b[:, [1, 3]] = b[:, [1, 3]].clamp(max=h - r)
    return b


def tiles_of(s: dict[str, Any], size: int, min_visible: float, fill: float | Tensor = 0.0) -> list[dict[str, Any]]:
    """Non-overlapping tiles of a sample (the last padded with `fill`), so a held-out tile shares no pixel with a
    training tile; a sample that fits in one tile is returned as it is (no padding)."""
    h, w = s["image"].shape[-2:]
    if h <= size and w <= size:
        return [s]
    return [tile_sample(s, r, c, size, min_visible, fill) for r in range(0, h, size) for c in range(0, w, size)]
