"""Opening datacubes: which paths are stores (Zarr folders, NetCDF files told by suffix or first bytes), the
stores a source's `paths` name (folders searched, globs, `.txt` lists), and xarray's open with one-line errors."""

from __future__ import annotations

import glob as _glob
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geodino.errors import InputError

__all__ = [
    "CubeUnreadable",
    "cube_paths",
    "is_cube_store",
    "is_zarr_store",
    "open_dataset",
    "recorded_for",
    "refuse_subdataset_path",
]

_REMOTE = ("/vsi", "http://", "https://", "s3://", "gs://", "az://", "abfs://", "gcs://")


def is_zarr_store(path: str | Path) -> bool:
    """Whether `path` names a Zarr store (a `.zarr` name, or a folder with Zarr v2/v3 metadata)."""
    p = Path(path)
    return p.suffix.lower() == ".zarr" or (p.is_dir() and ((p / ".zgroup").exists() or (p / "zarr.json").exists()))


def _consolidated(path: str) -> bool | None:
    """Whether the local Zarr store `path` holds consolidated metadata (v2 `.zmetadata`, or v3 `zarr.json` with
    `consolidated_metadata`); None for a remote store or a folder without Zarr metadata, left to xarray's try-then-
    fall-back. Told so that a store without it opens quietly: xarray's fall-back warns 'Failed to open Zarr store with
    consolidated metadata' (advice on opening speed), which reached users as a geodino warning for a valid store."""
    p = Path(path)
    if path.startswith(_REMOTE):
        return None
    if (p / ".zmetadata").is_file():
        return True
    if (p / ".zgroup").is_file():
        return False
    try:
        meta = json.loads((p / "zarr.json").read_text())
    except (OSError, ValueError):  # no v3 metadata (or damaged): xarray's own open says what is wrong
        return None
    return isinstance(meta, dict) and meta.get("consolidated_metadata") is not None


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"  # NetCDF4 is HDF5
_CDF_MAGICS = (b"CDF\x01", b"CDF\x02", b"CDF\x05")  # classic, 64-bit offset, 64-bit data NetCDF
_NETCDF_SUFFIXES = (".nc", ".nc4", ".h5", ".netcdf")
_READERS = ("h5netcdf", "netcdf4", "h5py")  # xarray's NetCDF4 engines and what they import


def _head(p: Path) -> bytes:
    """The first 8 bytes of a file (the HDF5 signature of a NetCDF4 file, `CDF` of a classic one)."""
    with p.open("rb") as f:
        return f.read(8)


def _netcdf_kind(p: Path) -> str | None:
    """'hdf5', 'classic' (CDF-1/CDF-2) or 'cdf5' (64-bit data, netCDF4 only) for a file whose first bytes say so
    (whatever its suffix), else None."""
    if not p.is_file():
        return None
    try:
        head = _head(p)
    except OSError:
        return None
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if head[:4] == b"CDF\x05":
        return "cdf5"
    return "classic" if head[:4] in _CDF_MAGICS else None


def _reader_import_error(exc: BaseException) -> ImportError | None:
    """The ImportError of a NetCDF4 reader (h5netcdf, netCDF4, h5py) in `exc`'s chain, if any."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ImportError):
            text = f"{cur.name or ''} {cur}".lower()
            if any(r in text for r in _READERS):
                return cur
        cur = cur.__cause__ or cur.__context__
    return None


def _calendar_needing_cftime(exc: BaseException) -> str | None:
    """The calendar named by xarray's refusal to decode a time axis without cftime (a CF `noleap`, `360_day` or
    `julian` axis, common in climate-model cubes), when cftime is indeed missing; else None. The refusal read as
    'cannot be opened (...); give a Zarr/NetCDF store', for a Zarr or NetCDF store, with xarray's decode_times=False
    hint, which no geodino option passes."""
    import importlib.util
    import re

    text = " ".join(str(e) for e in (exc, exc.__cause__, exc.__context__) if e is not None)
    if "decode time units" not in text or "cftime" not in text or importlib.util.find_spec("cftime") is not None:
        return None
    found = re.search(r"calendar '([^']+)'", text)
    return found.group(1) if found else "non-standard"


class CubeUnreadable(InputError):
    """A datacube no reader can open (a truncated file, a store whose metadata is damaged), `why` its reader's
    error on one line: a many-scene run under --on-error skip skips that scene (`geodino.embed.scene_checks`)."""

    def __init__(self, line: str, why: str) -> None:
        super().__init__(line)
        self.why = why


def _one_line(exc: BaseException) -> str:
    """An exception's text on one line (xarray's engine messages span several)."""
    return " ".join(str(exc).split())


def _sorted_variables(ds: Any) -> Any:
    """A Zarr store's data variables in name order: the store's listing is the order per-band variables are stacked
    and listed in, and zarr < 3.1.2 listed a local store's members in the file system's order (B02, B08, B03, B04),
    so the same store read in another order on another machine or version."""
    names = sorted(ds.data_vars, key=str)
    if list(ds.data_vars) == names:
        return ds
    return ds[[*names, *ds.coords]]  # the coordinates listed too: none is dropped for lack of a variable using it


def open_dataset(path: str) -> Any:
    """Open a NetCDF file (told by its suffix or its first bytes) or a Zarr store, raw and without dask.

    A NetCDF4 (HDF5) file that no installed reader opens (none installed, or its import fails) is one line naming
    the file and the install (`pip install 'geodino[netcdf]'`) instead of xarray's engine list or an ImportError.
    Each call opens the store (its metadata read again: costly on a remote Zarr), so a reader that needs it twice
    passes the Dataset on (`cubes.open_cube(ds, name=path)`)."""
    import xarray as xr

    p = Path(path)
    kind = _netcdf_kind(p)
    if kind == "cdf5":  # scipy takes it for classic NetCDF: an IndexError, or an empty Dataset for a bare header
        import importlib.util

        if importlib.util.find_spec("netCDF4") is None:
            raise InputError(
                f"datacube {path} is a NetCDF CDF-5 (64-bit data) file, which only the netCDF4 package reads "
                "(xarray's scipy reader misreads it): pip install 'geodino[netcdf]' (or pip install netCDF4)"
            )
    try:
        if kind is not None or p.suffix.lower() in _NETCDF_SUFFIXES:
            engine = "netcdf4" if kind == "cdf5" else None  # never the scipy reader's guess
            return xr.open_dataset(path, engine=engine, chunks=None, mask_and_scale=False, decode_coords="all")
        if not path.startswith(_REMOTE) and not p.exists():  # zarr < 3.1.2 said "No group found in store" for it
            raise FileNotFoundError(f"{path} does not exist")
        return _sorted_variables(
            xr.open_zarr(path, chunks=None, mask_and_scale=False, decode_coords="all", consolidated=_consolidated(path))
        )
    except Exception as exc:
        calendar = _calendar_needing_cftime(exc)
        if calendar is not None:
            raise InputError(
                f"datacube {path} has a time axis in the {calendar!r} calendar, which xarray decodes only with the "
                "cftime package (not installed): pip install cftime (geodino[netcdf] brings it with netCDF4)"
            ) from exc
        broken = _reader_import_error(exc)
        if kind == "hdf5" and (broken is not None or "netcdf4" in str(exc).lower()):
            why = (  # xarray's message lists engines and links; say the one step
                f"its reader failed to import ({type(broken).__name__}: {_one_line(broken)})"
                if broken is not None
                else "neither is installed"
            )
            raise InputError(
                f"datacube {path} is a NetCDF4 (HDF5) file, which xarray reads with h5netcdf or netCDF4 and {why}: "
                "pip install 'geodino[netcdf]' (or pip install h5netcdf); NetCDF3 files and Zarr stores need neither"
            ) from exc
        if kind is None and p.is_file():  # the Zarr reader's 'No group found' (a store is a folder) or xarray's list
            tiff = _head(p)[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
            line = (
                f"datacube {path} is neither a NetCDF file (its first bytes are not NetCDF3's CDF or HDF5's "
                "signature) nor a Zarr store (a folder); "
            )
            if tiff:
                raise InputError(line + "it is a TIFF: read it as a raster (type: raster)") from exc
            raise CubeUnreadable(line + "give a Zarr store or a NetCDF file", "neither NetCDF nor Zarr") from exc
        raise CubeUnreadable(
            f"datacube {path} cannot be opened ({type(exc).__name__}: {_one_line(exc)}); give a Zarr/NetCDF store",
            f"{type(exc).__name__}: {_one_line(exc)}",
        ) from exc


_SUBDATASET = re.compile(r'^(NETCDF|HDF5):("?)(.+)\2:(?://)?([^:/]+)$', re.IGNORECASE)


def refuse_subdataset_path(path: str, variable: str | None) -> None:
    """Refuse a GDAL subdataset path (`NETCDF:"f.nc":var`, `HDF5:"f.h5"://var`) in one line naming the file and the
    variable to pass instead: `NETCDF:...` was refused as a file that "does not exist" and `HDF5:...` taken for a URL
    (its `://`) and read by GDAL's HDF5 driver without the store's CRS. The cube reader reads the file's variable
    with its grid mapping; --variable chooses it."""
    m = _SUBDATASET.match(path)
    if m is None:
        return
    file, var = m.group(3), m.group(4)
    if not Path(file).exists():
        raise InputError(f"input {path} names {file}, which does not exist; pass an existing NetCDF/HDF5 file")
    given = "" if variable in (None, var) else f" (not --variable {variable})"
    raise InputError(
        f"input {path} is a GDAL subdataset path; pass the file and its variable instead{given}: {file} --variable "
        f"{var} (variable={var!r} in Python)"
    )


def is_cube_store(path: str | Path) -> bool:
    """Whether `path` names a datacube: a Zarr store (`is_zarr_store`), or a NetCDF file told by its suffix (.nc,
    .nc4, .netcdf, .h5; also a remote or missing one, for the opener to name) or by its first bytes (NetCDF3's `CDF`,
    HDF5's signature: a suffix-less file). The one test every reader shares (training sources, `data stats`,
    `embed`), so a file one of them takes for a cube is not a raster to another."""
    p = Path(path).expanduser()
    if is_zarr_store(p):
        return True
    if p.is_dir():
        return False
    return p.suffix.lower() in _NETCDF_SUFFIXES or _netcdf_kind(p) is not None


def _is_store(p: Path) -> bool:
    """An existing datacube (`is_cube_store`); kept for older imports."""
    return is_cube_store(p) and (p.is_file() or p.is_dir())


def _stores_in(folder: Path) -> list[str]:
    """The sorted Zarr stores and NetCDF files under `folder` (recursively, not inside a Zarr store; symbolic links
    to folders followed, a folder reached twice listed once)."""
    from geodino.data.paths import walk_once
    from geodino.io_temps import temp_target

    hits: list[str] = []
    for root, dirs, files in walk_once(folder):
        stores = [d for d in dirs if is_zarr_store(Path(root, d))]
        # a store a geodino run is still writing, or a killed run left (`.NAME.tmp-TAG-PID.zarr`), is no input
        hits += [os.path.join(root, d) for d in stores if temp_target(d) is None]
        dirs[:] = [d for d in dirs if d not in stores]  # a store's chunks are not datacubes of their own
        hits += [os.path.join(root, f) for f in files if _is_store(Path(root, f)) and temp_target(f) is None]
    return sorted(hits)


def cube_paths(paths: str | Path | Sequence[str | Path]) -> list[str]:
    """The stores a cube source's `paths` name, in order, each once: a Zarr store or a file as given; a folder that
    is not a Zarr store, its Zarr stores and NetCDF files (searched recursively, `_stores_in`); a glob, the stores it
    matches; a `.txt` list, its entries; remote URLs as written. A folder or glob naming no store is one line."""
    from geodino.data.paths import read_list

    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    found: list[str] = []
    for item in items:
        text = str(item)
        if text.startswith(_REMOTE):
            found.append(text)
            continue
        p = Path(text).expanduser()
        magic = any(ch in text for ch in "*?[")
        if is_zarr_store(p) and (p.exists() or not magic):  # `cubes/*.zarr` is a glob, not a store of that name
            found.append(str(p))
        elif magic:
            hits = sorted(h for h in _glob.glob(str(p), recursive=True) if _is_store(Path(h)))
            if not hits:
                raise InputError(f"glob {text!r} matched no datacube (Zarr stores, NetCDF files); check the pattern")
            found += hits
        elif p.is_dir():
            hits = _stores_in(p)
            if not hits:
                raise InputError(
                    f"folder {p} is not a Zarr store and holds no datacube (Zarr stores with .zgroup/zarr.json, "
                    "NetCDF files; searched recursively); point `paths` at the stores"
                )
            found += hits
        elif p.is_file() and p.suffix.lower() == ".txt":
            found += read_list(p, "datacube")
        else:
            found.append(str(p))  # a file, or a missing path: open_cube names it
    return list(dict.fromkeys(found))


def recorded_for(records: dict[str, Any], path: str, what: str) -> Any:
    """The value `records` (keyed by resolved store paths, as a cube list's grid record is) holds for the store at
    `path`: by its resolved path; else by file name, only when exactly one record has that name (a list moved with
    its stores to another folder); None when none does. Two records of that name (a/x.zarr and b/x.zarr) and no path
    match are refused in one line: the last one read was taken, so a store was checked against its namesake's affine
    (refused though unchanged, or passed though changed). `what` names the record in the message (the list)."""
    resolved = str(Path(path).resolve())
    if resolved in records:
        return records[resolved]
    name = Path(path).name
    same = [k for k in records if Path(k).name == name]
    if len(same) == 1:
        return records[same[0]]
    if not same:
        return None
    raise InputError(
        f"{what} records {len(same)} datacubes named {name} ({', '.join(same)}) and datacube {path} is at neither "
        "path, so which one it was cut on is unknown; read the stores where the list was cut, or re-run "
        "`geodino data curate` on them where they are now"
    )
