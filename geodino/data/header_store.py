"""Image headers kept on disk across processes (`geodino.data.headers`' cache holds them for one process only).

Why: a second `geodino probe` on 20,000 GeoTIFF chips, its features all cached, still opened every chip's header
once (~0.7 ms each, ~40 s of 75 s) to settle the dataset's band count and DN rule, although nothing had changed.

Where: `headers/headers-1.sqlite` in geodino's user cache folder (`geodino.user_cache`: `$GEODINO_CACHE_DIR`, else
`$XDG_CACHE_HOME/geodino`, else `~/.cache/geodino`). `GEODINO_HEADER_STORE=off` (or 0, false, no) turns it off:
every process opens the headers again, as before. SQLite (the standard library's `sqlite3`), not one JSON file per
folder: one file however many folders, a row read by its key without loading a folder's thousands of entries,
transactions that keep two writing processes from corrupting it, and nothing in it runs code (no pickle). Its
rollback journal, not WAL: WAL's shared-memory index does not work on a network file system (a home on NFS, where
a cluster's jobs on several nodes share ~/.cache), locking does. Readers share the file; a writer holds it for
one short transaction per `FLUSH_EVERY` headers (or `FLUSH_AFTER_S` seconds), at exit for the rest.

Trust: a row is used only for the same absolute path and reader, the same stat as the in-process cache keys on
(`headers.header_stamp`: mtime, size, ctime, inode and those of the `.aux.xml` sidecar) and the same version key:
this schema (`SCHEMA`, with `ImageHeader`'s field names), geodino's version and the reading library's (rasterio's
and its GDAL's, with the GDAL settings in the environment and those of an active `rasterio.Env`, or Pillow's), so an
upgrade of either reads every header again; each row carries a CRC of itself, so a damaged page never passes for a
header. Only headers `headers.read_header` caches are kept (a file or sidecar changed within `io_stamps.RACY_NS` is
not: its stat may not show a rewrite yet), failures never. Machines sharing the store (a home on NFS) that each hold
another file at one node-local path (/tmp, /scratch) share a row only when the files' size, mtime, ctime and inode
all agree: the ctime is each machine's clock to the nanosecond, so in practice the same content (one archive
extracted on each node, whose header is the same), or a chance on a file system of whole-second times. The host is
not in the key: a container's host name changes each run, and a dataset on a shared file system is the same file on
every node.

Failure never fails a run: a damaged store (or another file by its name) is emptied with one warning and filled
again; one held by another process past `BUSY_S`, one warning, and headers are read from the files for the rest
of the process; an unwritable folder or no home, silently so. At most `MAX_ROWS` rows are kept (the oldest go).
"""

from __future__ import annotations

import atexit
import json
import os
import sqlite3
import threading
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from geodino.data.headers import ImageHeader, Stamp, reader_kind

__all__ = ["SWITCH_ENV", "close", "env_options", "flush", "keep", "lookup", "store_path"]

SWITCH_ENV = "GEODINO_HEADER_STORE"
SCHEMA = 1  # bump when what `headers._read` makes of a file changes (within one geodino version)
FLUSH_EVERY = 1000  # headers kept in memory before a write transaction
FLUSH_AFTER_S = 10.0  # ... or seconds since the first of them (a notebook that never exits)
BUSY_S = 5.0  # how long a statement waits for another process's transaction (once: then the store is off)
MAX_ROWS, PRUNE_TO = 1_000_000, 800_000  # ~300 bytes a row

_FIELDS = tuple(f.name for f in fields(ImageHeader))
_TUPLES = frozenset(f.name for f in fields(ImageHeader) if str(f.type).startswith("tuple"))
LAYOUT = 1  # the tables' layout (PRAGMA user_version), also in the file's name
FILE = f"headers-{LAYOUT}.sqlite"
_LAYOUT = f"""BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS facts (path TEXT NOT NULL, reader TEXT NOT NULL, v TEXT NOT NULL, stamp TEXT NOT NULL,
    head TEXT NOT NULL, crc INTEGER NOT NULL, added INTEGER NOT NULL, PRIMARY KEY (path, reader)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS crs (key TEXT PRIMARY KEY, wkt TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
PRAGMA user_version = {LAYOUT};
COMMIT;
"""
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)

_LOCK = threading.RLock()  # one connection per process, shared by its threads
_STORES: dict[tuple[str, ...], _Store | None] = {}
_WARNED = [False]
_VERSIONS: dict[str, str] = {}
_INHERITED: list[_Store] = []


def store_path() -> Path | None:
    """The store's file, or None when `GEODINO_HEADER_STORE` turns it off or no folder can be named (no home). A
    value of `GEODINO_HEADER_STORE` that is neither on nor off is a ConfigError naming it."""
    from geodino.user_cache import switched_cache_dir

    folder = switched_cache_dir(SWITCH_ENV, "headers")
    return None if folder is None else folder / FILE


def lookup(name: str, reader: str, stamp: Stamp, options: str = "") -> ImageHeader | None:
    """The header an earlier read of the local file `name` (by `reader`) at `stamp`, under the in-process GDAL
    `options` (`env_options`), kept, else None."""
    path = _key(name)
    with _LOCK:
        store = _store()
        return None if store is None or path is None else store.lookup(path, reader, stamp, options)


def keep(name: str, reader: str, stamp: Stamp, head: ImageHeader, options: str = "") -> None:
    """Keep the header just read of the settled local file `name` (under `options`) for later processes (written in
    batches)."""
    path = _key(name)
    with _LOCK:
        store = _store()
        if store is not None and path is not None:
            store.keep(path, reader, stamp, head, options)


def _key(name: str) -> str | None:
    """The absolute path `name` is stored under; None for a name that is no UTF-8 text (bytes a Linux file name may
    hold, which SQLite's text cannot): such a file's header is read by each process."""
    path = os.path.abspath(name)
    try:
        path.encode()
    except UnicodeEncodeError:
        return None
    return path


def flush() -> None:
    """Write the headers kept in memory (at exit, and before a test's "second process")."""
    with _LOCK:
        for store in _STORES.values():
            if store is not None and store.pid == os.getpid():
                store.flush()


def close() -> None:
    """Flush and forget this process's connections: the next ask opens the store again, as a new process would."""
    with _LOCK:
        flush()
        for store in _STORES.values():
            if store is not None and store.conn is not None and store.pid == os.getpid():
                store.conn.close()
        _STORES.clear()
        _VERSIONS.clear()
        _WARNED[0] = False


def _forked() -> None:
    """A child forked while another thread held the lock gets a free one (its connection is the parent's anyway)."""
    global _LOCK
    _LOCK = threading.RLock()


atexit.register(flush)
os.register_at_fork(after_in_child=_forked)


def _store() -> _Store | None:
    """This process's store for the current settings (each setting read once per ask: a test or a notebook may
    change them)."""
    env = os.environ
    key = tuple(env.get(k, "") for k in (SWITCH_ENV, "GEODINO_CACHE_DIR", "XDG_CACHE_HOME", "HOME"))
    if key in _STORES:
        store = _STORES[key]
        if store is None or store.pid == os.getpid():
            return store
        _INHERITED.append(store)  # a forked worker's parent's: never closed here (it could roll back the parent's)
    path = store_path()
    store = _STORES[key] = None if path is None else _Store(path)
    if store is not None:
        _flush_at_child_exit()
    return store


def _flush_at_child_exit() -> None:
    """In a multiprocessing child (a DataLoader worker: `data curate` reads a header per image there), flush when it
    exits: such a child ends in `os._exit`, so `atexit` never runs there, and the headers it read since its last
    batch were lost; multiprocessing runs its own exit finalizers first."""
    import multiprocessing
    import multiprocessing.util

    if multiprocessing.parent_process() is not None:
        multiprocessing.util.Finalize(None, flush, exitpriority=0)


def _version(reader: str, name: str, options: str = "") -> str:
    """The version key of the rows of the library that reads `name` (module docstring) under the in-process GDAL
    `options` (`env_options`), computed once a process for each."""
    kind = reader_kind(name, reader)
    found = _VERSIONS.get(kind + options)
    if found is None:
        from geodino import __version__

        if kind == "rasterio":
            import rasterio

            libs = f"rasterio {rasterio.__version__} gdal {rasterio.__gdal_version__} {_gdal_settings()}{options}"
        else:
            import PIL

            libs = f"pillow {PIL.__version__}"
        found = _VERSIONS[kind + options] = _digest(f"{SCHEMA}|{','.join(_FIELDS)}|geodino {__version__}|{libs}")
    return found


_SETTINGS = ("GDAL_", "GTIFF_", "OSR_", "PROJ_", "CPL_")
_NOT_READ = frozenset({"GDAL_CACHEMAX", "GDAL_NUM_THREADS", "CPL_DEBUG", "CPL_LOG", "CPL_LOG_ERRORS"})


def _gdal_settings() -> str:
    """The GDAL/PROJ settings in the environment, as text: they change what a header reads as
    (`GDAL_PAM_ENABLED=NO` ignores the `.aux.xml` sidecar's scale/offset and band names, `GTIFF_POINT_GEO_IGNORE`
    moves the transform, `GDAL_GEOREF_SOURCES` picks where it comes from, `PROJ_DATA` the CRS's WKT), so rows
    read under other settings are not used. Settings that change only speed, logging or network access (remote
    files are not kept; rasterio sets `GDAL_CURL_CA_BUNDLE` to its certifi file) are left out."""
    found = sorted((k, v) for k, v in os.environ.items() if _is_setting(k))
    return json.dumps(found)


# set in a `rasterio.Env` without changing a header: rasterio's own data folder (GDAL_DATA, in every Env), the folder
# listing geodino's header read sets itself over an outer Env's value (`headers.no_folder_listing`), overviews only
_SAME_HEADER = frozenset({"GDAL_DATA", "GDAL_DISABLE_READDIR_ON_OPEN", "GTIFF_IMPLICIT_JPEG_OVR"})


def env_options() -> str:
    """The GDAL/PROJ settings a `rasterio.Env(...)` active in this thread sets in the process (not environment
    variables, which `_gdal_settings` reads), as text ("" for none): `rasterio.Env(GDAL_PAM_ENABLED="NO")` around an
    embed left out the `.aux.xml`'s scale/offset and band names on a read, while the header cached in the process and
    in the store still had them (likewise `GTIFF_SRS_SOURCE`, `GTIFF_POINT_GEO_IGNORE`, `GDAL_GEOREF_SOURCES`). The
    same names as `_gdal_settings`, those set to their environment variable's value left out. Options set with
    `rasterio.env.set_gdal_config` or GDAL's own `SetConfigOption` outside an Env are not seen (GDAL lists no
    options to rasterio): docs/probing.md says so."""
    import sys

    env = sys.modules.get("rasterio.env")  # not imported: no Env can be active
    if env is None or not env.hasenv():
        return ""
    found = sorted(
        (k, str(v))
        for k, v in env.getenv().items()
        if _is_setting(k) and k not in _SAME_HEADER and os.environ.get(k) != str(v)
    )
    return json.dumps(found) if found else ""


def _is_setting(key: str) -> bool:
    """Whether GDAL setting `key` may change what a header reads as (`_gdal_settings`)."""
    return key.startswith(_SETTINGS) and key not in _NOT_READ and "CURL" not in key and "HTTP" not in key


def _digest(text: str) -> str:
    """A short hash of `text`: the version key, a CRS's key in the crs table."""
    import hashlib

    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _crc(*parts: str) -> int:
    return zlib.crc32("\0".join(parts).encode())


class _Foreign(sqlite3.DatabaseError):
    """A database by the store's name that is not one (another program's, or a later layout's)."""


class _Store:
    """One process's connection to the store file, opened at the first ask; its headers waiting to be written."""

    def __init__(self, path: Path) -> None:
        self.path, self.pid = path, os.getpid()
        self.conn: sqlite3.Connection | None = None
        self.off = self.emptied = False
        self.pending: dict[tuple[str, str], tuple[str, str, ImageHeader]] = {}
        self.since = 0.0
        self.wkt: dict[str, str] = {}  # a CRS's key (`_digest` of its WKT) -> WKT: the same in every store file

    def lookup(self, path: str, reader: str, stamp: Stamp, options: str = "") -> ImageHeader | None:
        if self.off:
            return None
        v, st = _version(reader, path, options), json.dumps(stamp)
        waiting = self.pending.get((path, reader))
        if waiting is not None:
            return waiting[2] if waiting[:2] == (v, st) else None
        rows = self._run(lambda c: c.execute(_SELECT, (path, reader)).fetchall())
        if not rows or tuple(rows[0][:2]) != (v, st) or _crc(path, reader, *rows[0][:3]) != rows[0][3]:
            return None
        return self._decode(rows[0][2])

    def keep(self, path: str, reader: str, stamp: Stamp, head: ImageHeader, options: str = "") -> None:
        if self.off:
            return
        if not self.pending:
            self.since = time.monotonic()
        self.pending[(path, reader)] = (_version(reader, path, options), json.dumps(stamp), head)
        if len(self.pending) >= FLUSH_EVERY or time.monotonic() - self.since >= FLUSH_AFTER_S:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, {}
        if batch and not self.off:
            self._run(lambda c: _write(c, batch))

    def _decode(self, text: str) -> ImageHeader | None:
        """`_encode`'s header, or None for a row that is not one."""
        try:
            values = json.loads(text)
            if not isinstance(values, list) or len(values) != len(_FIELDS):
                return None
            out: dict[str, Any] = {
                f: tuple(x) if f in _TUPLES and isinstance(x, list) else x for f, x in zip(_FIELDS, values, strict=True)
            }
            if out["crs"]:
                out["crs"] = self._wkt(out["crs"])
            head = ImageHeader(**out)
        except (ValueError, TypeError):
            return None
        good = all(isinstance(getattr(head, f), tuple) for f in _TUPLES) and isinstance(head.crs, str)
        return head if good and all(isinstance(getattr(head, f), int) for f in ("width", "height", "count")) else None

    def _wkt(self, key: str) -> str:
        """The CRS stored under `key`; a ValueError when there is none that hashes to it."""
        import sys

        found = self.wkt.get(key)
        if found is None:
            rows = self._run(lambda c: c.execute("SELECT wkt FROM crs WHERE key = ?", (key,)).fetchall())
            if not rows or _digest(rows[0][0]) != key:
                raise ValueError(f"no CRS {key}")
            found = self.wkt[key] = sys.intern(rows[0][0])
        return found

    def _connect(self) -> sqlite3.Connection:
        """A connection to the store, its tables made when the file is new (empty)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_S, isolation_level=None, check_same_thread=False)
        try:
            layout = conn.execute("PRAGMA user_version").fetchone()[0]
            if layout == 0:
                conn.executescript(_LAYOUT)
            elif layout != LAYOUT:
                raise _Foreign(f"not geodino's header store of layout {LAYOUT} (user_version {layout})")
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self, op: Callable[[sqlite3.Connection], Any]) -> Any:
        """`op(connection)`, or None when the store cannot be used: damaged (emptied, one warning, used again),
        busy past `BUSY_S` (one warning, off for the process), or not writable (off, silently)."""
        for _ in range(2):
            if self.off:
                return None
            try:
                if self.conn is None:
                    self.conn = self._connect()
                return op(self.conn)
            except sqlite3.Error as exc:
                code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # the primary code of an extended one
                if code in _BUSY:
                    self.off = True
                    _warn(
                        f"the header store {self.path} is held by another process ({exc}); headers are read "
                        "from the files for the rest of this run"
                    )
                elif (code in _DAMAGED or isinstance(exc, _Foreign) or _lacks_layout(exc)) and not self.emptied:
                    self.emptied = True
                    _warn(f"the header store {self.path} is damaged ({exc}); it is emptied and filled again")
                    self._empty()
                else:
                    self.off = True
            except OSError:
                self.off = True
        return None

    def _empty(self) -> None:
        """Truncate the damaged file in place (an empty file is an empty database) and drop its journal: unlinking
        it would leave another process writing the old inode while its journal, by the same name, met the new one."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        try:
            with open(self.path, "r+b") as fh:
                fh.truncate(0)
            for tail in ("-journal", "-wal", "-shm"):
                Path(f"{self.path}{tail}").unlink(missing_ok=True)
        except OSError:
            self.off = True


_SELECT = "SELECT v, stamp, head, crc FROM facts WHERE path = ? AND reader = ?"


def _write(conn: sqlite3.Connection, batch: dict[tuple[str, str], tuple[str, str, ImageHeader]]) -> None:
    """One transaction: the batch's CRSs and rows, then the row count and, past `MAX_ROWS`, the oldest rows out."""
    now = int(time.time())
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows: list[tuple[Any, ...]] = []
        crs: dict[str, str] = {}  # key -> WKT of the batch's CRSs
        for (path, reader), (v, st, head) in batch.items():
            text = _encode(head, crs)
            rows.append((path, reader, v, st, text, _crc(path, reader, v, st, text), now))
        conn.executemany("INSERT OR IGNORE INTO crs VALUES (?, ?)", crs.items())
        conn.executemany("INSERT OR REPLACE INTO facts VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute(
            "INSERT INTO meta VALUES ('rows', ?) ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            (len(rows),),
        )
        if conn.execute("SELECT value FROM meta WHERE key = 'rows'").fetchall()[0][0] > MAX_ROWS:
            _prune(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _encode(head: ImageHeader, crs: dict[str, str]) -> str:
    """The header as a JSON list in `ImageHeader`'s field order, its CRS by its key in the crs table (`crs`: key ->
    WKT, added to): one WKT of ~1 KB per CRS, not per file."""
    values = [getattr(head, f) for f in _FIELDS]
    if head.crs:
        key = _digest(head.crs)
        crs[key] = head.crs
        values[_FIELDS.index("crs")] = key
    return json.dumps(values, separators=(",", ":"))


def _prune(conn: sqlite3.Connection) -> None:
    """Past `MAX_ROWS` rows (by an exact count; the meta count is an upper bound: a replaced row counts again), the
    oldest go (by when they were written, then by path) until `PRUNE_TO` are left."""
    count = conn.execute("SELECT count(*) FROM facts").fetchall()[0][0]
    if count > MAX_ROWS:
        order = "ORDER BY added DESC, path DESC, reader DESC LIMIT 1 OFFSET ?"
        cut = conn.execute(f"SELECT added, path, reader FROM facts {order}", (PRUNE_TO,)).fetchall()[0]
        conn.execute("DELETE FROM facts WHERE (added, path, reader) <= (?, ?, ?)", cut)
        count = conn.execute("SELECT count(*) FROM facts").fetchall()[0][0]
    conn.execute("UPDATE meta SET value = ? WHERE key = 'rows'", (count,))


def _lacks_layout(exc: sqlite3.Error) -> bool:
    """Whether `exc` says a table or column of the layout is missing (a file edited by hand, a table dropped)."""
    return isinstance(exc, sqlite3.OperationalError) and str(exc).startswith(("no such table", "no such column"))


def _warn(message: str) -> None:
    """One warning a process."""
    if not _WARNED[0]:
        _WARNED[0] = True
        warnings.warn(message, stacklevel=2)
