"""DN -> reflectance of the probes' image files, and the one line saying which rule each run used.

`InputScaling` picks, in order, an explicit data_scale/data_offset, the scale/offset a file declares (GDAL
`<Scale>`/`<Offset>`, as `geodino embed` applies it), the DN scale the backbone's export records, or the dtype rule
(`data_scale`), once per dataset (`InputScaling.settle`: every image of every split gets the same rule, whatever its
own values; a declared rule is each file's own). Shared by the dense probes (`geodino.eval.dense.to_image_tensor`),
the class-per-folder image datasets (`geodino.eval.datasets`) and `geodino embed images`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from geodino.data.headers import RASTERIO_SUFFIXES
from geodino.errors import ConfigError, InputError, plural

SAMPLES_SCALED = "none here: the samples came scaled (train_data/val_data or a dataset adapter)"
DECLARED = "(declared by each file: GDAL scale/offset)"  # the end of a dataset's rule that its files declare
SIXTEEN_BIT = (np.dtype(np.uint16), np.dtype(np.int16))
HEADER_SUFFIXES = RASTERIO_SUFFIXES  # read with rasterio: dtype and count from the header
Rule = tuple[np.ndarray | float, np.ndarray | float, str]


def data_scale(dtype: Any, scale: float, name: str = "the image data", key: str = "data_scale") -> float:
    """The factor to reflectance: `scale` when set (> 0), else the dtype rule (`geodino.data.dtype_rule`: 1/255 for
    uint8, 1/10000 for uint16/int16, 1 for floats), which refuses data of other types (int8, 32/64-bit integers)
    in one line naming `name` (the file) and `key`, the setting that gives the factor."""
    from geodino.data.dtype_rule import dtype_divisor

    if scale > 0:
        return scale
    return 1 / dtype_divisor(dtype, name, scale_fix(key))


def scale_fix(key: str) -> str:
    """What to do about data without a default rule, naming `key`: a flag (`--scale` of `geodino embed images`,
    scale= in Python) or a config key (`data_scale`, `data.scale`; a suite task's own spelling is put in by the
    runner, `name_task_keys`)."""
    if key.startswith("-"):
        return (
            f"if it is imagery, pass {key} FACTOR, its DN -> reflectance factor ({key} 1 reads the values as they "
            f"are; {key.lstrip('-')}= in Python)"
        )
    return f"if it is imagery, set {key} to its DN -> reflectance factor ({key}=1 reads the values as they are)"


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

    In order: an explicit `data_scale` (> 0, with `data_offset`), else the scale/offset the file itself declares
    (GDAL `<Scale>`/`<Offset>`, `geodino.data.headers.declared_rule`: each file by its own, as `geodino embed` reads
    each scene by its own; files of one dtype and band count that declare beside files that do not are refused in
    one line naming one of each, as `embed` refuses such scenes), else the DN scale/offset the backbone's export
    records (what `geodino embed` applies: `geodino.embed.sweep.recorded_scale`) when it fits the images (one
    value or one per band; not uint8 data with a scale for 16-bit DN, nor 16-bit values above 255 in any image of
    the dataset with a scale for 8-bit DN; never int8 data, which holds codes), else by dtype (`data_scale`: 1/255
    for uint8, 1/10000 for uint16/int16, 1 for floats, other types refused naming the data_scale key). A
    probe calls `settle` with every file of the dataset first, so the rule is the dataset's, not one image's.
    Without the record, data of a sensor with an offset (Landsat C2 L2: 2.75e-5, -0.2) reached the backbone in
    other units than it was trained on. `what` names the probe in the line `say` prints; `keys` are the config
    keys of the explicit scale and offset, for the descriptions. `file_scale` False (the config's `file_scale`, as
    `geodino embed`'s): the files' declarations are not read, the line says so.
    """

    def __init__(
        self,
        backbone: Any = None,
        scale: float = 0.0,
        offset: float = 0.0,
        what: str = "",
        keys: tuple[str, str] = ("data_scale", "data_offset"),
        file_scale: bool = True,
    ) -> None:
        self.scale, self.offset, self.what, self.keys = float(scale), float(offset), what, keys
        self.file_scale = bool(file_scale)  # False: the scale/offset a file declares is not read
        self.recorded: tuple[np.ndarray, np.ndarray, str] | None = None
        if backbone is not None and self.scale <= 0:
            from geodino.embed.sweep import recorded_scale

            rec = recorded_scale(backbone)
            if rec is not None:  # sensor, file, as embed says them: "sensor rgb, in t.heads.pth beside t.pth"
                self.recorded = (rec[0], rec[1], rec[2].origin_said())
        self.backbone = backbone
        self.warned: set[str] = set()  # dtypes whose recorded-units warning was given (`_warn_units`: once each)
        self.used: dict[str, None] = {}  # the rules applied so far, in order (a dict as an ordered set)
        self.fixed: dict[tuple[str, int], Rule] = {}  # (dtype name, bands) -> the dataset's rule (`settle`)
        self.declared: dict[str, Rule] = {}  # file -> the rule it declares itself (`settle`; `rule` for others)
        # (dtype name, bands) -> (whether its files declare a rule, one of them): a file seen later must agree
        self.kinds: dict[tuple[str, int], tuple[bool, str]] = {}
        self.seen: set[str] = set()  # the files `settle` looked at
        self.settled = False

    @classmethod
    def of(cls, cfg: Any, backbone: Any = None, what: str = "") -> InputScaling:
        """The rule of a probe config's `data_scale`/`data_offset`/`file_scale` keys and the backbone's record."""
        scale, offset = getattr(cfg, "data_scale", 0.0), getattr(cfg, "data_offset", 0.0)
        return cls(backbone, scale, offset, what, file_scale=getattr(cfg, "file_scale", True))

    def decide(
        self, dtype: Any, n_bands: int, top: float | None = None, where: str = "the image data", name: str = ""
    ) -> Rule:
        """(scale, offset, description) for data of `dtype` with `n_bands` bands (after band selection); `top` is
        the largest value of all the data the rule is for (only read for 16-bit data with an 8-bit record);
        `where` names the data in the warning of a recorded rule in other units than its mean/std (`_warn_units`),
        `name` (default `where`) in the refusal of a type without a default rule (`data_scale`). `dtype` `PHOTO16`:
        16-bit web-format photos, read as pretraining reads them (`photo_scaling.photo16_rule`)."""
        from geodino.eval.photo_scaling import PHOTO16, photo16_rule

        photo = isinstance(dtype, str) and dtype == PHOTO16
        dt = np.dtype(np.uint16 if photo else dtype)
        if self.scale > 0:
            keys = self.keys[0] + (f", {self.keys[1]}" if self.offset else "")
            return self.scale, self.offset, f"{scaling_text(self.scale, self.offset)} ({keys})"
        if photo:
            return photo16_rule(self.recorded, n_bands, self.keys[0])
        why = ""
        if self.recorded is not None:
            scale, offset, source = self.recorded
            why = self._misfit(dt, n_bands, scale, offset, top)
            if not why:
                text = f"{scaling_text(scale, offset)} (the backbone's DN scale: {source})"
                self._warn_units(dt, where)
                if scale.size > 1 or offset.size > 1:  # per band: broadcast over [C,H,W]
                    scale, offset = scale.reshape(-1, 1, 1), offset.reshape(-1, 1, 1)
                return scale, offset, text
        factor = data_scale(dt, 0.0, name or where, self.keys[0])
        rule = {1 / 255: "x/255", 1 / 10000: "x/10000"}.get(factor, "x")
        text = f"{rule} (by dtype: {dt.name}{' used as reflectance' if factor == 1.0 else ''}"
        if self.recorded is not None:
            scale, offset, source = self.recorded
            text += f"; the backbone's DN scale {scaling_text(scale, offset)} ({source}) does not fit: {why}"
        return factor, 0.0, text + f"; set {self.keys[0]} if wrong)"

    def needs_values(self, dtype: Any, n_bands: int) -> bool:
        """Whether the rule for data of `dtype` and `n_bands` bands depends on the data's values: only 16-bit data
        with a recorded scale for 8-bit DN (8-bit DN stored as 16 bits fit it, values above 255 do not), not 16-bit
        photos (`PHOTO16`: 0..65535 by their format)."""
        from geodino.eval.photo_scaling import PHOTO16

        if dtype == PHOTO16 or self.scale > 0 or self.recorded is None or np.dtype(dtype) not in SIXTEEN_BIT:
            return False
        scale, offset, _ = self.recorded
        return self._misfit(dtype, n_bands, scale, offset, None) != self._misfit(dtype, n_bands, scale, offset, 256)

    def settle(
        self,
        files: Iterable[str | Path],
        read: Callable[[Path], tuple[np.ndarray, np.ndarray | None]],
        bands: Sequence[int] | None = None,
    ) -> None:
        """Decide the rule once for a whole dataset: every file of every split (and the files predicted after
        training), before any is read for features, so that each image of a dataset gets the same rule whatever
        its own values (a dark 16-bit tile, max <= 255, was divided by 255 where its neighbours were divided by
        10000; a split by the rule of its own first image). One rule per dtype and band count, from the files'
        headers; only 16-bit files with a recorded 8-bit scale are read (`read`: pixels [C,H,W] as stored and the
        valid pixels [H,W] or None), until one has a valid value above 255. `bands`: the 0-based bands kept.
        16-bit web-format photos are a group of their own (`photo_scaling.kind_name`)."""
        from geodino.eval.photo_scaling import kind_name

        groups: dict[tuple[str, int], list[Path]] = {}
        short: set[Path] = set()  # files without every kept band: their reader says so, not a declared-rule check
        declares = self.scale <= 0 and self.file_scale
        # each file's declared rule read right after its header: a header-cache hit however long the listing (a
        # second pass over more files than the cache holds, 65,536, read every header again)
        declared: dict[Path, Rule | None] = {}
        unread: list[tuple[Path, InputError]] = []  # every file that does not read, said at once (not one a run)
        listed = list(dict.fromkeys(Path(f) for f in files))
        for f in listed:
            try:
                dt, n = image_header(f, lambda p: read(p)[0])
            except InputError as exc:
                unread.append((f, exc))
                continue
            groups.setdefault((kind_name(dt, f), len(bands) if bands else n), []).append(f)
            if bands and max(bands) >= n:
                short.add(f)
            elif declares:
                declared[f] = self._declared_of(f, bands)
        if unread:
            _refuse_unread(unread, len(listed))
        self.seen.update(str(f) for ps in groups.values() for f in ps)
        for (name, n), paths in groups.items():
            if declares and self._settle_declared(name, n, {f: declared[f] for f in paths if f not in short}):
                continue
            self.kinds[(name, n)] = (False, str(paths[0]))
            top = None
            if self.needs_values(name, n):
                top = 0
                for f in paths:
                    top = max(top, _valid_max(*read(f), bands))
                    if top > 255:
                        break
            more = plural(len(paths) - 1, "other image") if len(paths) > 1 else ""
            where = str(paths[0]) + (f" and {more}" if more else "")
            one = str(paths[0]) + (f" (and {more} of its type)" if more else "")
            self.fixed[(name, n)] = self.decide(name, n, top, where, one)
        self.settled = True

    def _settle_declared(self, name: str, n: int, found: dict[Path, Rule | None]) -> bool:
        """Note the rule each file of one dtype/band-count group declares (`found`: by file, `_declared_of`, None
        for none); False when none declares. Some declaring beside some not is refused (`_refuse_mix`): their
        reflectance would differ by the declared offset/scale, silently. The group's entry in `fixed` names the
        declared rules met."""
        rules = {f: r for f, r in found.items() if r is not None}
        if not rules:
            return False
        plain = next((f for f, r in found.items() if r is None), None)
        first = next(iter(rules))
        if plain is not None:
            self._refuse_mix(first, plain, name, n)
        self.declared.update((str(f), r) for f, r in rules.items())
        self.kinds[(name, n)] = (True, str(first))
        texts = ", ".join(dict.fromkeys(scaling_text(r[0], r[1]) for r in rules.values()))
        self.fixed[(name, n)] = (*rules[first][:2], f"{texts} {DECLARED}")
        return True

    def _declared_of(self, path: str | Path, bands: Sequence[int] | None) -> Rule | None:
        """The rule `path` declares for the kept `bands` (0-based; None: all), or None when it declares none."""
        from geodino.data.headers import declared_rule

        found = declared_rule(path, [b + 1 for b in bands] if bands else None, fix=self._declared_fix())
        if found is None:
            return None
        scale, offset = (np.asarray(v, dtype=np.float32) for v in found)
        s, o = (v[:1] if np.all(v == v[0]) else v for v in (scale, offset))  # one value when every band has it
        text = f"{scaling_text(s, o)} (declared by the file: GDAL scale/offset)"
        return s.reshape(-1, 1, 1), o.reshape(-1, 1, 1), text

    def _declared_fix(self) -> str:
        """The ways out of a partly declared file (`declared_rule`'s refusal) in this caller's settings: its scale
        key (`keys[0]`: a probe's data_scale / data.scale, `geodino embed images`' --scale) and its file_scale; the
        refusal named `geodino embed`'s --scale and band_scale, which a probe does not read."""
        key = self.keys[0]
        if key.startswith("-"):
            return (
                f"pass {key} FACTOR ({key.lstrip('-')}= in Python), one rule for all bands that overrides the "
                f"files', or leave the files' own unread with {self.file_scale_off()}"
            )
        return (
            f"set {key}, one DN -> reflectance factor for all bands that overrides the files', or leave the files' "
            f"own unread with {self.file_scale_off()}"
        )

    def _refuse_mix(self, declaring: str | Path, plain: str | Path, name: str, n: int) -> None:
        """One line: `declaring` declares a DN rule and `plain`, of the same dtype and band count, declares none."""
        from geodino.errors import InputError

        rule = self._declared_of(declaring, None)
        said = scaling_text(rule[0], rule[1]) if rule else "a scale/offset"
        key = self.keys[0]
        fix = f"pass {key} FACTOR" if key.startswith("-") else f"set {key}"
        raise InputError(
            f"{declaring} declares its DN -> reflectance rule ({said}, GDAL scale/offset) but {plain}, also {name} "
            f"with {plural(n, 'band')}, declares none: the two would be read in different units; write the same "
            f"scale/offset into every file (or remove it from all), or {fix} to one rule for all (it overrides "
            "the files' declarations)"
        )

    def rule(self, data: np.ndarray, where: str = "the image data", bands: Sequence[int] | None = None) -> Rule:
        """(scale, offset, description) for `data` [C,H,W] in file units (after band selection, `bands` 0-based
        of the file `where`): an explicit scale; else the rule the file declares (found by `settle`, or read here
        for a file the scan did not see); else the dataset's rule for its dtype and band count once `settle` ran
        (a file the scan did not see fixes it for the rest of the run), else decided on `data` alone (its own
        largest value); `where` names the file in messages (and, by its suffix, a 16-bit photo's group)."""
        from geodino.eval.photo_scaling import PHOTO16, kind_name

        key = (kind_name(data.dtype, where), int(data.shape[0]))
        if self.scale <= 0 and self.file_scale:
            name = str(Path(where))
            found = self.declared.get(name)
            if found is None and name not in self.seen and Path(name).is_file():
                found = self._declared_of(name, bands)
                kind = self.kinds.get(key)
                if kind is not None and kind[0] != (found is not None):  # against the dataset's settled files
                    pair = (name, kind[1]) if found is not None else (kind[1], name)
                    self._refuse_mix(*pair, *key)
                if self.settled:  # decided for the rest of the run, as the dataset's files are
                    self.seen.add(name)
                    if found is not None:
                        self.declared[name] = found
            if found is not None:
                return found
        if key in self.fixed:
            return self.fixed[key]
        top = int(data.max()) if data.dtype in SIXTEEN_BIT and data.size else None
        found = self.decide(PHOTO16 if key[0] == PHOTO16 else data.dtype, data.shape[0], top, where)
        if self.settled:
            self.fixed[key] = found
        return found

    def _warn_units(self, dt: np.dtype, where: str) -> None:
        """One line (once per dtype) when the backbone's recorded DN step, which this rule applies, and its mean/std
        are in different units (`geodino.embed.input_scaling.record_units_reason`, the rule `geodino embed` warns
        by), naming the key that overrides it (`tasks.<name>.<key>` inside a suite task)."""
        if dt.name in self.warned:
            return
        import warnings

        from geodino.embed.input_scaling import record_units_reason
        from geodino.models.caller import user_stacklevel
        from geodino.user_keys import user_key

        why = record_units_reason(dt, where, self.backbone)
        if why is None:
            return
        self.warned.add(dt.name)
        key = self.keys[0]  # a config key (`tasks.<name>.` before it in a suite), or a flag (`geodino embed images`)
        fix = f"pass {key} FACTOR," if key.startswith("-") else f"set {user_key(key)} to"
        warnings.warn(
            f"{why}; {fix} the DN -> reflectance factor of the data (e.g. 0.0001 for 16-bit reflectance x 10000, "
            f"{1 / 255:.6g} for 8-bit)",
            stacklevel=user_stacklevel(),
        )

    @staticmethod
    def _misfit(dtype: Any, n_bands: int, scale: np.ndarray, offset: np.ndarray, top: float | None) -> str:
        """Why a recorded scale does not fit the data ("" when it does): `data.bit_depth.scale_misfit`."""
        from geodino.data.bit_depth import scale_misfit

        return scale_misfit(dtype, n_bands, scale, offset, top)

    def apply(self, data: np.ndarray, where: str = "the image data", bands: Sequence[int] | None = None) -> Tensor:
        """[C,H,W] float32 reflectance of `data` (file units, the 0-based `bands` of file `where`; NaN -> 0); the
        rule is noted for `describe`."""
        from geodino.eval.photo_scaling import reflectance

        rule = self.rule(data, where, bands)
        self.used.setdefault(rule[2], None)
        return torch.nan_to_num(torch.from_numpy(np.ascontiguousarray(reflectance(data, rule))))

    def describe(self, default: str = SAMPLES_SCALED) -> str:
        """The rules used so far, '; '-joined, and `off_note` (`default` when no image file was scaled: the samples
        came scaled)."""
        return "; ".join(self.used) + self.off_note() if self.used else default

    def off_note(self) -> str:
        """ "; the files' own GDAL scale/offset not read (file_scale false)" when `file_scale` is off, else "" (and
        with a given scale, which overrides the files' anyway), the switch as the caller spells it
        (`file_scale_off`)."""
        if self.file_scale or self.scale > 0:
            return ""
        return f"; the files' own GDAL scale/offset not read ({self.file_scale_off()})"

    def file_scale_off(self) -> str:
        """The setting that turns the files' declarations off, in the spelling of the scale key `keys[0]`: the flag
        beside a flag (`geodino embed images`' --scale), else the config key beside it (data.file_scale beside
        data.scale, tasks.NAME.file_scale beside tasks.NAME.data_scale)."""
        key = self.keys[0]
        if key.startswith("-"):
            return "--no-file-scale, file_scale=False in Python"
        return ((key.rpartition(".")[0] + ".") if "." in key else "") + "file_scale false"

    def say(self) -> str:
        """Print `<what>: input scaling <rules>` to stderr when image files were scaled (once, at the end of a
        run: a failed run prints only its error); returns `describe()` for the metrics JSON."""
        if self.used:
            import sys

            print(f"{self.what or 'probe'}: input scaling {self.describe()}", file=sys.stderr)
        return self.describe()


def check_data_offset(scale: float, offset: float, keys: tuple[str, str] = ("data_scale", "data_offset")) -> None:
    """Refuse an offset without a scale (`keys` name them): the offset belongs to an explicit DN -> reflectance
    rule, and alone it would be added to data scaled by another rule. A negative or non-finite scale (read as 0, the
    default rule, so the user's factor was silently ignored) or a non-finite offset is refused too."""
    s, o = keys
    if not (np.isfinite(scale) and scale >= 0):
        raise ConfigError(
            f"{s}={scale:g} must be a positive DN -> reflectance factor (e.g. {s}=0.0001 for reflectance x 10000), or "
            "0 for the default rule (the backbone's recorded scale, else by dtype)"
        )
    if not np.isfinite(offset):
        raise ConfigError(f"{o}={offset:g} must be a finite number added after the scale, or 0")
    if offset and scale <= 0:
        raise ConfigError(
            f"{o}={offset:g} needs {s}: set {s} to the DN -> reflectance factor too "
            f"(e.g. {s}=2.75e-5, {o}=-0.2 for Landsat C2 L2), or drop {o}"
        )


def _refuse_unread(errors: list[tuple[Path, InputError]], total: int) -> None:
    """Raise the error of the one file that does not read, or one line for several: how many, the first's reason and
    the others' paths (a dataset with several broken files was refused one file per run)."""
    if len(errors) == 1:
        raise errors[0][1]
    rest = ", ".join(str(f) for f, _ in errors[1:6]) + (f" and {len(errors) - 6} more" if len(errors) > 6 else "")
    first = str(errors[0][1]).removesuffix("; check the file or remove it")
    raise InputError(
        f"{len(errors)} of {total} image files do not read: {first}; also {rest}; check the files or remove them"
    ) from errors[0][1]


def image_header(path: Path, read: Callable[[Path], np.ndarray]) -> tuple[np.dtype, int]:
    """(dtype, band count) of an image file from its header (`geodino.data.headers`: rasterio for GeoTIFF/VRT/...,
    Pillow's mode for 8-bit L/RGB PNG/JPEG, the modes every reader of the probes reads as stored), else of
    `read(path)` (pixels [C,H,W] as the caller reads them)."""
    from geodino.data.headers import header_or_none

    head = header_or_none(path)
    if head is not None and (head.reader == "rasterio" or head.mode in ("L", "RGB")):
        try:
            return np.dtype(head.dtype), head.count
        except TypeError:  # a type numpy has no name for (complex_int16): the reader below says what it makes of it
            pass
    arr = read(path)
    return arr.dtype, int(arr.shape[0])


def _valid_max(data: np.ndarray, valid: np.ndarray | None, bands: Sequence[int] | None) -> int:
    """The largest value of `data` [C,H,W] in the kept `bands` over its valid pixels (0 when none; out-of-range
    bands are left to the reader's own error)."""
    if bands and all(0 <= b < data.shape[0] for b in bands):
        data = data[list(bands)]
    pix = data[:, valid] if valid is not None and valid.shape == data.shape[1:] else data
    return int(pix.max()) if pix.size else 0
