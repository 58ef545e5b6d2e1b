"""The on-disk header store (`geodino.data.header_store`): a second process opens no header of an unchanged file,
reads again what changed or what another geodino/GDAL read, and survives a damaged or busy store file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geodino.data import header_store, headers
from tests import helpers


@pytest.fixture
def opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The files whose header `headers._read` opens; a store of this test's own, opened afresh."""
    monkeypatch.setenv("GEODINO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(header_store.SWITCH_ENV, raising=False)
    header_store.close()
    headers._cached.cache_clear()
    calls: list[str] = []
    real = headers._read
    monkeypatch.setattr(headers, "_read", lambda name, reader: calls.append(name) or real(name, reader))
    yield calls
    header_store.close()
    headers._cached.cache_clear()


def new_process() -> None:
    """What a new process starts with: no headers in memory, the store opened again (what this one kept written)."""
    header_store.close()
    headers._cached.cache_clear()


def files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = [helpers.write_tif(folder / "a.tif", np.ones((4, 8, 6), np.uint16))]
    for i, shape in enumerate([(10, 14), (12, 16, 3)]):
        Image.fromarray(np.zeros(shape, np.uint8)).save(folder / f"{i}.png")
        out.append(folder / f"{i}.png")
    return out


def test_a_second_process_opens_no_header_of_unchanged_files(tmp_path: Path, opened: list[str], monkeypatch) -> None:
    paths = files(tmp_path / "data")
    first = [headers.read_header(p) for p in paths]
    assert len(opened) == 3
    new_process()
    again = [headers.read_header(p) for p in paths]
    assert len(opened) == 3  # none opened again
    assert again == first and again[0].crs and again[0].transform[0] == 10.0 and again[2].count == 3
    monkeypatch.chdir(tmp_path)  # a relative name of the same file: the store keys on the absolute path
    new_process()
    assert headers.read_header("data/1.png") == first[2] and len(opened) == 3


def test_a_changed_file_is_opened_again(tmp_path: Path, opened: list[str]) -> None:
    paths = files(tmp_path / "data")
    for p in paths:
        headers.read_header(p)
    opened.clear()
    new_process()
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(paths[1])  # other size
    dated = os.stat(paths[2]).st_mtime_ns
    os.utime(paths[2], ns=(dated - 10**9, dated - 10**9))  # other mtime
    assert headers.read_header(paths[1]).size == (30, 20)
    assert headers.read_header(paths[2]).size == (16, 12)
    assert headers.read_header(paths[0]).count == 4
    assert sorted(opened) == sorted(str(p) for p in paths[1:])


def test_a_version_change_discards_entries(tmp_path: Path, opened: list[str], monkeypatch) -> None:
    """Another schema (as another geodino or GDAL version) reads every header again, then keeps them."""
    paths = files(tmp_path / "data")
    for p in paths:
        headers.read_header(p)
    new_process()
    monkeypatch.setattr(header_store, "SCHEMA", header_store.SCHEMA + 1)
    for p in paths:
        headers.read_header(p)
    assert len(opened) == 6
    new_process()
    for p in paths:
        headers.read_header(p)
    assert len(opened) == 6


def test_a_fresh_file_is_not_kept(tmp_path: Path, opened: list[str], _settled_headers: list[int]) -> None:
    _settled_headers[0] = 0  # this machine's clock: the files were just written
    paths = files(tmp_path / "data")
    headers.read_header(paths[0])
    new_process()
    _settled_headers[0] = 3600 * 10**9
    headers.read_header(paths[0])
    assert len(opened) == 2


def test_a_damaged_store_is_emptied_with_one_warning(tmp_path: Path, opened: list[str]) -> None:
    paths = files(tmp_path / "data")
    first = [headers.read_header(p) for p in paths]
    new_process()
    store = header_store.store_path()
    assert store is not None and store.is_file()
    store.write_bytes(b"not a database at all" * 200)
    with pytest.warns(UserWarning, match=r"header store .*headers-1\.sqlite is damaged .*emptied and filled again"):
        assert [headers.read_header(p) for p in paths] == first
    assert len(opened) == 6
    new_process()
    assert [headers.read_header(p) for p in paths] == first and len(opened) == 6  # filled again


def test_a_damaged_row_is_read_from_the_file(tmp_path: Path, opened: list[str]) -> None:
    """A row whose text does not match its CRC (a torn page, an edit) is never taken for a header."""
    paths = files(tmp_path / "data")
    headers.read_header(paths[1])
    new_process()
    with sqlite3.connect(header_store.store_path()) as conn:
        conn.execute("UPDATE facts SET head = replace(head, '14', '15')")
    assert headers.read_header(paths[1]).size == (14, 10) and len(opened) == 2


def test_a_busy_store_costs_header_reads_not_the_run(tmp_path: Path, opened: list[str], monkeypatch) -> None:
    paths = files(tmp_path / "data")
    first = [headers.read_header(p) for p in paths]
    new_process()
    monkeypatch.setattr(header_store, "BUSY_S", 0.05)
    holder = sqlite3.connect(header_store.store_path(), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing, for longer than BUSY_S
    try:
        with pytest.warns(UserWarning, match=r"header store .* is held by another process"):
            assert [headers.read_header(p) for p in paths] == first
    finally:
        holder.close()
    assert len(opened) == 6


def test_two_processes_writing_at_once_keep_every_row(tmp_path: Path, opened: list[str]) -> None:
    """Two processes each keep 400 headers in batches of 20 at the same time: every row is there, the file whole."""
    script = (
        "import sys; from geodino.data import header_store as s; from geodino.data.headers import ImageHeader\n"
        "s.FLUSH_EVERY = 20; s.BUSY_S = 30\n"
        "h = ImageHeader(8, 8, 3, 'uint8', (None,) * 3, (), 'pillow', 'RGB')\n"
        "for i in range(400): s.keep(f'/none/{sys.argv[1]}/{i}.png', 'auto', (1, 2, None, i), h)\n"
        "s.flush()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    runs = [subprocess.Popen([sys.executable, "-c", script, tag], env=env) for tag in ("a", "b")]
    assert [r.wait(timeout=60) for r in runs] == [0, 0]
    with sqlite3.connect(header_store.store_path()) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM facts").fetchone()[0] == 800
    assert header_store.lookup("/none/b/399.png", "auto", (1, 2, None, 399)) is not None


def test_the_switch_turns_the_store_off(tmp_path: Path, opened: list[str], monkeypatch) -> None:
    from geodino.errors import ConfigError

    paths = files(tmp_path / "data")
    monkeypatch.setenv(header_store.SWITCH_ENV, "off")
    headers.read_header(paths[0])
    new_process()
    headers.read_header(paths[0])
    assert len(opened) == 2 and not (tmp_path / "cache").exists()
    monkeypatch.setenv(header_store.SWITCH_ENV, "sometimes")
    new_process()
    with pytest.raises(ConfigError, match=r"GEODINO_HEADER_STORE='sometimes' must be on or off"):
        headers.read_header(paths[0])


def test_a_file_whose_name_is_no_utf8_is_read_not_kept(tmp_path: Path, opened: list[str]) -> None:
    name = os.path.join(os.fsdecode(bytes(tmp_path)), os.fsdecode(b"caf\xe9.png"))  # Latin-1 bytes in a name
    Image.fromarray(np.zeros((10, 14), np.uint8)).save(name)
    assert headers.read_header(name).size == (14, 10)
    new_process()
    assert headers.read_header(name).size == (14, 10) and len(opened) == 2


def test_the_oldest_rows_go_past_the_cap(tmp_path: Path, opened: list[str], monkeypatch) -> None:
    from geodino.data.headers import ImageHeader

    monkeypatch.setattr(header_store, "FLUSH_EVERY", 10)
    monkeypatch.setattr(header_store, "MAX_ROWS", 25)
    monkeypatch.setattr(header_store, "PRUNE_TO", 10)
    head = ImageHeader(8, 8, 3, "uint8", (None,) * 3, (), "pillow", "RGB")
    for i in range(40):  # 30 rows past 25: the newest 10 kept, then 10 more
        header_store.keep(f"/none/{i:02d}.png", "auto", (1, 2, None, i), head)
    new_process()
    kept = [i for i in range(40) if header_store.lookup(f"/none/{i:02d}.png", "auto", (1, 2, None, i))]
    assert kept == list(range(20, 40))


def test_a_store_without_its_table_is_emptied(tmp_path: Path, opened: list[str]) -> None:
    paths = files(tmp_path / "data")
    headers.read_header(paths[1])
    new_process()
    with sqlite3.connect(header_store.store_path()) as conn:
        conn.execute("DROP TABLE facts")
    with pytest.warns(UserWarning, match=r"is damaged \(no such table: facts\)"):
        assert headers.read_header(paths[1]).size == (14, 10)
    headers.read_header(paths[2])
    new_process()
    assert headers.read_header(paths[2]).size == (16, 12) and len(opened) == 3  # paths[2] kept in the new tables


def test_a_second_probe_process_settles_its_folder_without_opening_a_header(
    tmp_path: Path, opened: list[str], monkeypatch
) -> None:
    """The measured case: an image-folder probe dataset built again in a new process (features cached) settles its
    band count and DN rule from the store."""
    from geodino.eval import folder_rule
    from geodino.eval.datasets import DatasetConfig, build_dataset

    for c in ("a", "b"):
        (tmp_path / "ds" / c).mkdir(parents=True)
        for i in range(4):
            helpers.write_tif(tmp_path / "ds" / c / f"{i}.tif", np.full((4, 8, 8), 100 * i, np.uint16))
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path / "ds"))
    first = build_dataset(cfg, "train")
    assert len(opened) == 8
    new_process()
    monkeypatch.setattr(folder_rule, "_MEMO", type(folder_rule._MEMO)())
    again = build_dataset(cfg, "train")
    assert len(opened) == 8  # none opened again
    assert (again.key, again.scaling, again.bands, again.files) == (first.key, first.scaling, first.bands, first.files)


class _CoarseClockOs:
    """`os` as `geodino.data.headers` sees it on a file system whose files extracted together share one ctime (one
    tick of the kernel's clock; 2,000 chips of one tar on ext4 showed 10 distinct ctimes)."""

    def __init__(self, ctime_ns: int) -> None:
        self.ctime_ns = ctime_ns

    def __getattr__(self, name: str):
        return getattr(os, name)

    def stat(self, path, *args, **kwargs):
        st = os.stat(path, *args, **kwargs)
        return type(
            "Stat", (), {k: getattr(st, k) for k in dir(st) if k.startswith("st_")} | {"st_ctime_ns": self.ctime_ns}
        )


def test_a_name_linked_to_another_file_of_the_same_stamp_reads_that_file(
    tmp_path: Path, opened: list[str], monkeypatch
) -> None:
    """Chips extracted together share size, mtime and ctime: a name made a link to another (`ln -sf b a`) is another
    file, by its inode, in this process and the next."""
    from affine import Affine

    a, b = (
        helpers.write_tif(tmp_path / f"{n}.tif", np.ones((2, 4, 4), np.uint16), transform=Affine(10, 0, x, 0, -10, 0))
        for n, x in (("a", 0.0), ("b", 990.0))
    )
    for p in (a, b):
        os.utime(p, ns=(10**18, 10**18))
    monkeypatch.setattr(headers, "os", _CoarseClockOs(os.stat(a).st_ctime_ns))
    assert headers.read_header(a).transform[2] == 0.0
    a.unlink()
    a.symlink_to(b)
    assert headers.read_header(a).transform[2] == 990.0  # this process
    new_process()
    assert headers.read_header(a).transform[2] == 990.0  # the next
    assert len(opened) == 2  # a, then the link (kept for the next process)


def test_rows_read_under_other_gdal_settings_are_not_used(tmp_path: Path, opened: list[str], monkeypatch) -> None:
    """`GDAL_PAM_ENABLED=NO` (often set for read-only data folders) ignores the `.aux.xml` sidecar's scale."""
    name = tmp_path / "c.tif"
    Image.fromarray(np.zeros((8, 8), np.int32)).save(name)
    band = '<PAMRasterBand band="1"><Offset>0</Offset><Scale>0.5</Scale></PAMRasterBand>'
    (tmp_path / "c.tif.aux.xml").write_text(f"<PAMDataset>{band}</PAMDataset>")
    assert headers.read_header(name).scales == (0.5,)
    new_process()
    monkeypatch.setenv("GDAL_PAM_ENABLED", "NO")
    assert headers.read_header(name).scales == ()
    new_process()
    assert headers.read_header(name).scales == () and len(opened) == 2  # kept under these settings
    monkeypatch.setenv("GDAL_CACHEMAX", "64")  # a setting of speed only: the same rows
    new_process()
    assert headers.read_header(name).scales == () and len(opened) == 2


def test_a_world_file_written_later_gives_the_header_its_transform(tmp_path: Path, opened: list[str]) -> None:
    """A TIFF without georeferencing of its own takes its transform from a `.tfw` beside it, written or removed
    later without touching the TIFF."""
    name = tmp_path / "scan.tif"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(name)
    assert headers.read_header(name).transform == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    (tmp_path / "scan.tfw").write_text("2\n0\n0\n-2\n100\n200\n")
    assert headers.read_header(name).transform == (2.0, 0.0, 99.0, 0.0, -2.0, 201.0)  # this process
    new_process()
    assert headers.read_header(name).transform == (2.0, 0.0, 99.0, 0.0, -2.0, 201.0)  # the next
    (tmp_path / "scan.tfw").rename(tmp_path / "scan.TFW")  # GDAL's upper-case name
    assert headers.read_header(name).transform == (2.0, 0.0, 99.0, 0.0, -2.0, 201.0)
    (tmp_path / "scan.TFW").unlink()
    assert headers.read_header(name).transform == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert len(opened) == 4


def test_a_settled_folder_is_listed_once_for_its_files(tmp_path: Path, monkeypatch) -> None:
    from geodino.data import header_sidecars

    for i in range(5):
        (tmp_path / f"{i}.tif").write_bytes(b"")
    (tmp_path / "3.tfw").write_text("1\n0\n0\n-1\n0\n0\n")
    header_sidecars.forget()
    listed: list[str] = []
    real = os.listdir
    monkeypatch.setattr(header_sidecars.os, "listdir", lambda f: listed.append(f) or real(f))
    later = types.SimpleNamespace(time_ns=lambda: os.stat(tmp_path).st_ctime_ns + 10**13)  # the folder settled
    monkeypatch.setattr(header_sidecars, "time", later)
    found = [header_sidecars.georef_stamp(str(tmp_path / f"{i}.tif")) for i in range(5)]
    assert [len(f) for f in found] == [0, 0, 0, 1, 0] and found[3][0][0] == "tfw" and len(listed) == 1
    (tmp_path / "1.wld").write_text("1\n0\n0\n-1\n0\n0\n")  # the folder changed: listed again
    assert header_sidecars.georef_stamp(str(tmp_path / "1.tif"))[0][0] == "wld" and len(listed) == 2
    header_sidecars.forget()


def test_a_writer_killed_inside_its_transaction_leaves_the_store_whole(tmp_path: Path, opened: list[str]) -> None:
    """A process killed while it writes (SIGKILL, out of memory) leaves its journal: the next process rolls the
    unfinished rows back and keeps the earlier ones."""
    import signal

    head = headers.ImageHeader(8, 8, 3, "uint8", (None,) * 3, (), "pillow", "RGB")
    header_store.keep("/none/kept.png", "auto", (1, 2, None, 3, 4, ()), head)
    header_store.flush()
    script = (
        "import time; from geodino.data import header_store as s\n"
        "c = s._store(); c._run(lambda conn: conn.execute('BEGIN IMMEDIATE'))\n"
        "c.conn.executemany('INSERT INTO facts VALUES (?,?,?,?,?,?,?)', [(f'/k/{i}', 'auto', 'v', 's', 'h', 0, 0)"
        " for i in range(2000)])\n"
        "print('inside', flush=True); time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None and run.stdout.readline().strip() == "inside"
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    assert Path(f"{header_store.store_path()}-journal").exists()
    new_process()
    assert header_store.lookup("/none/kept.png", "auto", (1, 2, None, 3, 4, ())) == head
    with sqlite3.connect(header_store.store_path()) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM facts").fetchone()[0] == 1
