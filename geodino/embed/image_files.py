"""The image files of `geodino embed images` as probe samples: each file read as the image-folder probes read it
(`geodino.eval.datasets.read_array`), its bands selected and checked against the backbone, scaled to reflectance by
the scale/offset the file declares (GDAL), else the folder's DN -> reflectance rule (one per dtype and band count,
settled before any image runs), and described
(size, bands, footprint) for its row; an unreadable file skipped or stopped at as --on-error says."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from geodino.embed.image_footprint import footprint_4326
from geodino.errors import InputError, plural

__all__ = ["ImageFiles", "band_message"]


class ImageFiles:
    """The image files as probe samples for `extract_features`: `image` (reflectance [C,H,W]) and `index` (the
    file's position, or -1 for a file skipped as unreadable: a zero image of the first image's shape stands in and
    its row is dropped after). Runs in the main process (num_workers=0), so `info` and `failed` fill as it is read."""

    def __init__(
        self,
        root: Path,
        files: list[str],
        backbone: Any,
        scaling: Any,
        *,
        bands: list[int] | None,
        on_error: str,
        native: bool,
    ) -> None:
        self.root, self.files, self.backbone, self.scaling = root, files, backbone, scaling
        self.select, self.on_error, self.native = [int(b) for b in bands or []], on_error, native
        self.name, self.split, self.key = str(root), "images", ""  # key "": extract_features keeps no cache
        self.bands = [f"b{i + 1}" for i in range(int(backbone.in_chans))]
        self.rgb = int(backbone.in_chans) == 3  # greyscale photos read as RGB for an RGB backbone, as pretraining
        self.info: list[dict[str, Any] | None] = [None] * len(files)
        self.failed: dict[int, str] = {}
        self.rules: dict[str, tuple[Any, Any, str]] = {}  # description -> the DN -> reflectance rules met
        self.rule_of: dict[int, str] = {}  # file index -> its rule's description, for the rules a part met
        self.ref: tuple[int, tuple[int, ...]] | None = None  # (index, shape [C,H,W]) of the first readable image
        self._first: Any = None

    def __len__(self) -> int:
        return len(self.files)

    def prime(self) -> None:
        """Settle the DN -> reflectance rule for every image at once (`_settle`), then read up to the first
        readable image (its shape is the reference); one line when none reads. Without --bands, a folder whose
        images differ in band count as read (a 4-band TIFF among RGB photos) is one line naming one, from the headers
        (`data.images.dataset_bands`), before any image runs through the backbone."""
        from geodino.data.images import dataset_bands

        if not self.select:
            dataset_bands([self.root / f for f in self.files], f"folder {self.root}", rgb=self.rgb)
        self._settle()
        for i in range(len(self.files)):
            x = self._load(i)
            if x is not None:
                self._first = x
                return
        shown = ", ".join(self.files[:3]) + (", ..." if len(self.files) > 3 else "")
        what = "the image file" if len(self.files) == 1 else f"none of the {len(self.files)} image files"
        verb = "could not be read" if len(self.files) == 1 else "could be read"
        raise InputError(f"{what} in {self.root} {verb} ({shown})")

    def _settle(self) -> None:
        """One rule per dtype and band count for the whole folder (`InputScaling.settle`, as the probes), not
        the rule of a dtype's first image: with a backbone recording 8-bit DN, a dark 16-bit first image (max <=
        255) set x/255 for every 16-bit image after it, 39x brighter than x/10000. Files that do not read are left
        to `_load` (skipped or stopped there, as `on_error` says)."""
        from geodino.eval.datasets import read_array

        def read(path: Path) -> tuple[np.ndarray, None]:
            try:
                return read_array(path, self.rgb), None
            except InputError:
                return np.zeros((0, 0, 0), dtype=np.uint8), None  # an empty uint8 group: decides nothing

        bands = [b - 1 for b in self.select] or None
        self.scaling.settle([self.root / f for f in self.files], read, bands)
        self.rules.clear()

    def _say_skipped(self, path: Path, why: str) -> None:
        """The warning for a file skipped as unreadable: the first `images.NAMED` of the run named one by one, then
        one line at the next and at every power of ten (100, 1,000, ...), as pretraining says corrupt images: a
        scraped folder of thousands of error pages saved as .jpg gave a line each. The output lists every one
        (`skipped` in its geodino metadata) and its last line counts them."""
        from geodino.data.images import NAMED, skip_said

        n = len(self.failed) + 1
        said = skip_said(n)
        if said == "name":
            warnings.warn(
                f"skipped unreadable image {path} ({why}); --on-error stop (on_error='stop' in Python) stops at such "
                "files",
                stacklevel=3,
            )
        elif said == "count":
            warnings.warn(
                f"{n} unreadable images skipped so far, the latest {path} ({why}); the first {NAMED} were named, more "
                "are counted at every power of ten (100, 1,000, ...); the output lists every one (`skipped` in its "
                "geodino metadata)",
                stacklevel=3,
            )

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        assert self.ref is not None, "prime() first"
        if self.ref[0] == i and self._first is not None:
            x = self._first
        elif i in self.failed:
            x = None
        else:
            x = self._load(i)
        if x is None:
            return {"image": torch.zeros(self.ref[1]), "index": torch.tensor(-1)}
        return {"image": x, "index": torch.tensor(i)}

    def _load(self, i: int) -> Any:
        """Reflectance [C,H,W] of file `i`, or None when it cannot be read and on_error is skip (warned)."""
        import torch

        from geodino.data.images import unreadable_detail
        from geodino.eval.datasets import read_array
        from geodino.eval.photo_scaling import reflectance

        path = self.root / self.files[i]
        try:
            arr = read_array(path, self.rgb)
        except InputError as exc:
            if self.on_error == "stop":
                raise InputError(f"{exc}, or pass --on-error skip (on_error='skip' in Python) to leave it out") from exc
            cause = exc.__cause__ or exc
            why = unreadable_detail(path, cause)
            if why == str(cause):  # the reader's own words, after its error type
                why = type(cause).__name__ if str(path) in why else f"{type(cause).__name__}: {why}"
            self._say_skipped(path, why)
            self.failed[i] = str(cause)
            return None
        n_file = int(arr.shape[0])
        if self.select:
            bad = [b for b in self.select if not 1 <= b <= n_file]
            if bad:
                raise InputError(
                    f"--bands {','.join(map(str, self.select))} asks for band {bad[0]} but {path} has "
                    f"{plural(n_file, 'band')} (bands are 1-based); choose bands 1..{n_file} (--bands, bands=[...] "
                    "in Python)"
                )
            arr = arr[[b - 1 for b in self.select]]
        self._check(arr, path)
        # the folder's rule for this dtype and band count (settled in `prime`), or the one this file declares
        rule = self.scaling.rule(arr, str(path), [b - 1 for b in self.select] or None)
        self.rule_of[i] = rule[2]
        x = reflectance(arr, self.rules.setdefault(rule[2], rule))
        h, w = arr.shape[-2:]
        self.info[i] = {"width": int(w), "height": int(h), "bands": n_file, "geometry": footprint_4326(path)}
        if self.ref is None:
            self.ref = (i, tuple(arr.shape))
        return torch.nan_to_num(torch.from_numpy(np.ascontiguousarray(x)))

    def _check(self, arr: np.ndarray, path: Path) -> None:
        """Bands against the backbone, size against the first image at native size: always a stop (not a corrupt
        file: a setting to change)."""
        n, want = int(arr.shape[0]), int(self.backbone.in_chans)
        if n != want:
            raise InputError(band_message(self.backbone, n, path, selected=bool(self.select)))
        if self.native and self.ref is not None and tuple(arr.shape[-2:]) != self.ref[1][-2:]:
            (h0, w0), (h, w) = self.ref[1][-2:], arr.shape[-2:]
            raise InputError(
                f"images in {self.root} have different sizes ({self.files[self.ref[0]]} is {w0}x{h0} px, "
                f"{path.relative_to(self.root).as_posix()} {w}x{h}); pass --image-size N (e.g. 224; image_size=N in "
                "Python) to resize them all to N x N"
            )

    def rules_text(self) -> str:
        """The DN -> reflectance rules used, '; '-joined, in the order met."""
        return "; ".join(dict.fromkeys(text for _, _, text in self.rules.values())) or "none (no image read)"


def band_message(backbone: Any, n: int, path: Path, *, selected: bool) -> str:
    """One line for an image whose band count differs from the backbone's: select bands, or adapt the backbone
    (the probes' `check_bands`, worded for this command's flags)."""
    want = int(backbone.in_chans)
    spec = str(getattr(backbone, "spec", "the backbone"))
    what = "--bands selects" if selected else "has"
    select = ""
    if n > want:
        first = ",".join(map(str, range(1, want + 1)))
        select = (
            f"select {plural(want, 'band')} with --bands (1-based, e.g. --bands {first}), bands=[{first}] in "
            "Python, or "
        )
    adapted = f"{spec}{'&' if '?' in spec else '?'}bands={n}"
    return (
        f"{path} {what} {plural(n, 'band')} but backbone {spec} takes {want}; {select}adapt the backbone's patch "
        f"embedding to {plural(n, 'band')} (--backbone '{adapted}', load_backbone(spec, bands={n}) in Python)"
    )
