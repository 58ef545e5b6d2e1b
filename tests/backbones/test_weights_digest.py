"""The per-user cache of weights files' sha256 (`geodino.backbones.weights_digest`): read again while the file is
unchanged, hashed again when it is not, and never a failure of its own (damaged entry, refusing folder, off)."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import pytest

from geodino.backbones import weights_digest as wd
from geodino.errors import ConfigError

OLD_NS = 1_600_000_000 * 10**9  # a settled mtime (2020)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache folder, the cache on, and a counter of real hashes (`calls[0]`)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(wd.DIR_ENV, str(folder))
    monkeypatch.delenv(wd.SWITCH_ENV, raising=False)
    monkeypatch.setattr(wd, "RACY_NS", 0)  # files written by the test count as settled
    return folder


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    counted = [0]
    real = wd.sha256_path

    def counting(path: Path) -> str:
        counted[0] += 1
        return real(path)

    monkeypatch.setattr(wd, "sha256_path", counting)
    return counted


def _weights(tmp_path: Path, data: bytes = b"weights" * 1000) -> Path:
    f = tmp_path / "model.pth"
    f.write_bytes(data)
    os.utime(f, ns=(OLD_NS, OLD_NS))
    return f


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / "digests").glob("*.json"))


def test_second_call_reads_the_cache(tmp_path: Path, cache: Path, calls: list[int]) -> None:
    f = _weights(tmp_path)
    want = hashlib.sha256(f.read_bytes()).hexdigest()
    assert wd.cached_sha256(f) == want
    assert wd.cached_sha256(f) == want
    assert calls[0] == 1
    (entry,) = _entries(cache)
    assert json.loads(entry.read_text())["sha256"] == want


def test_a_rewritten_file_is_hashed_again(tmp_path: Path, cache: Path, calls: list[int]) -> None:
    f = _weights(tmp_path, b"a" * 4096)
    first = wd.cached_sha256(f)
    f.write_bytes(b"b" * 4096)  # same size
    os.utime(f, ns=(OLD_NS + 10**9, OLD_NS + 10**9))  # a new, still settled mtime
    second = wd.cached_sha256(f)
    assert second == hashlib.sha256(b"b" * 4096).hexdigest() != first
    assert calls[0] == 2
    assert wd.cached_sha256(f) == second and calls[0] == 2  # the new digest replaced the old entry


def test_an_entry_whose_stat_differs_is_not_trusted(tmp_path: Path, cache: Path, calls: list[int]) -> None:
    """Same size and mtime restored (`cp -p`, `touch -d`): the ctime and inode still tell."""
    f = _weights(tmp_path, b"a" * 4096)
    wd.cached_sha256(f)
    f.unlink()
    _weights(tmp_path, b"c" * 4096)
    assert wd.cached_sha256(f) == hashlib.sha256(b"c" * 4096).hexdigest()
    assert calls[0] == 2


def test_a_fresh_file_is_not_cached(tmp_path: Path, cache: Path, calls: list[int], monkeypatch) -> None:
    """Written within RACY_NS: a same-tick rewrite could leave its stat unchanged, so it is hashed each time (its
    entry only notes when its stat was first seen, no digest)."""
    monkeypatch.setattr(wd, "RACY_NS", 3600 * 10**9)
    f = tmp_path / "new.pth"
    f.write_bytes(b"new")
    wd.cached_sha256(f)
    wd.cached_sha256(f)
    assert calls[0] == 2
    (entry,) = _entries(cache)
    assert "sha256" not in json.loads(entry.read_text())


def test_a_file_changed_while_it_is_hashed_is_not_cached(tmp_path: Path, cache: Path, monkeypatch) -> None:
    """The digest is of the bytes read, which may be neither the file before nor after a write during the read: no
    entry is stored when the stat after the hash differs from the one before, and the next call hashes again."""
    f = _weights(tmp_path)
    real = wd.sha256_path

    def rewritten_meanwhile(path: Path) -> str:
        digest = real(path)
        f.write_bytes(b"other" * 1000)
        os.utime(f, ns=(OLD_NS, OLD_NS))  # a same-mtime rewrite: its size, ctime and perhaps inode move
        return digest

    monkeypatch.setattr(wd, "sha256_path", rewritten_meanwhile)
    wd.cached_sha256(f)
    monkeypatch.setattr(wd, "sha256_path", real)
    assert not _entries(cache)  # storing it paired the old bytes' digest with the new stat
    assert wd.cached_sha256(f) == hashlib.sha256(b"other" * 1000).hexdigest()


def test_a_future_mtime_is_cached(tmp_path: Path, cache: Path, calls: list[int]) -> None:
    """An mtime set ahead (`touch -d`, an archive made where the clock was ahead) says nothing of when the file last
    changed (its ctime does): such a file was never stored, and every process hashed it again."""
    f = _weights(tmp_path)
    future = 4_102_444_800 * 10**9  # 2100
    os.utime(f, ns=(future, future))
    assert wd.cached_sha256(f) == wd.cached_sha256(f) == hashlib.sha256(f.read_bytes()).hexdigest()
    assert calls[0] == 1


def test_a_change_in_this_clocks_future_is_cached_a_window_after_it_is_first_seen(
    tmp_path: Path, cache: Path, calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file server's clock an hour ahead of this machine's: the ctime stays in the future for an hour, and every
    process hashed the file again. Now a second sighting of the same stat RACY_NS after the first stores its digest;
    sightings in between do not move the first."""
    import types

    window = 10 * 10**9
    monkeypatch.setattr(wd, "RACY_NS", window)
    f = _weights(tmp_path)
    now = [os.stat(f).st_ctime_ns - 3600 * 10**9]
    monkeypatch.setattr(wd, "time", types.SimpleNamespace(time_ns=lambda: now[0]))
    want = hashlib.sha256(f.read_bytes()).hexdigest()
    assert wd.cached_sha256(f) == want and calls[0] == 1
    now[0] += window // 2
    assert wd.cached_sha256(f) == want and calls[0] == 2  # too soon: hashed again
    now[0] += window // 2
    assert wd.cached_sha256(f) == want and calls[0] == 3  # a window after the first sighting: hashed and stored
    assert wd.cached_sha256(f) == want and calls[0] == 3


@pytest.mark.parametrize("damage", [b"{not json", b"", b'["a list"]', b'{"path": 1}', b"\xff\xfe"])
def test_a_damaged_entry_is_recomputed_and_replaced(
    tmp_path: Path, cache: Path, calls: list[int], damage: bytes
) -> None:
    f = _weights(tmp_path)
    want = wd.cached_sha256(f)
    (entry,) = _entries(cache)
    entry.write_bytes(damage)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert wd.cached_sha256(f) == want
    assert calls[0] == 2
    assert json.loads(entry.read_text())["sha256"] == want  # rewritten whole
    assert wd.cached_sha256(f) == want and calls[0] == 2


def test_a_forged_digest_of_the_wrong_form_is_not_used(tmp_path: Path, cache: Path, calls: list[int]) -> None:
    f = _weights(tmp_path)
    want = wd.cached_sha256(f)
    (entry,) = _entries(cache)
    stored = json.loads(entry.read_text())
    entry.write_text(json.dumps({**stored, "sha256": "not a digest"}))
    assert wd.cached_sha256(f) == want and calls[0] == 2


@pytest.mark.parametrize("word", ["off", "0", "False", " no "])
def test_off_by_env_var(tmp_path: Path, cache: Path, calls: list[int], monkeypatch, word: str) -> None:
    monkeypatch.setenv(wd.SWITCH_ENV, word)
    f = _weights(tmp_path)
    wd.cached_sha256(f)
    wd.cached_sha256(f)
    assert calls[0] == 2
    assert not cache.exists()


def test_a_bad_switch_value_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(wd.SWITCH_ENV, "sometimes")
    with pytest.raises(ConfigError, match=r"GEODINO_DIGEST_CACHE='sometimes' must be on or off"):
        wd.digest_cache_dir()


def test_no_home_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: list[int]) -> None:
    """No folder can be named (no variable, no home): the digest is computed, nothing else happens."""
    monkeypatch.delenv(wd.DIR_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv(wd.SWITCH_ENV, raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert wd.digest_cache_dir() is None
    f = _weights(tmp_path)
    assert wd.cached_sha256(f) == hashlib.sha256(f.read_bytes()).hexdigest() and calls[0] == 1


def test_a_cache_path_that_cannot_be_a_folder(tmp_path: Path, monkeypatch, calls: list[int], capsys) -> None:
    """A file where the cache folder would be: the digest is computed, silently, every time."""
    (tmp_path / "blocker").write_text("a file")
    monkeypatch.setenv(wd.DIR_ENV, str(tmp_path / "blocker"))
    monkeypatch.setattr(wd, "RACY_NS", 0)
    f = _weights(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert wd.cached_sha256(f) == wd.cached_sha256(f) == hashlib.sha256(f.read_bytes()).hexdigest()
    assert calls[0] == 2
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_folder(tmp_path: Path, cache: Path, calls: list[int], capsys) -> None:
    """A read-only cache (a shared, pre-filled one): its entries are read; new digests are computed, not stored."""
    known = _weights(tmp_path)
    want = wd.cached_sha256(known)
    other = tmp_path / "other.pth"
    other.write_bytes(b"other")
    os.utime(other, ns=(OLD_NS, OLD_NS))
    (cache / "digests").chmod(0o555)
    try:
        assert wd.cached_sha256(known) == want
        assert calls[0] == 1
        assert wd.cached_sha256(other) == wd.cached_sha256(other) == hashlib.sha256(b"other").hexdigest()
        assert calls[0] == 3
        assert len(_entries(cache)) == 1
    finally:
        (cache / "digests").chmod(0o755)
    assert capsys.readouterr().err == ""


def test_a_weights_folder(tmp_path: Path, cache: Path, calls: list[int]) -> None:
    """A folder of weights (names and contents hashed): a change to any file in it is seen."""
    d = tmp_path / "hf"
    d.mkdir()
    for name in ("config.json", "model.safetensors"):
        (d / name).write_text(name)
        os.utime(d / name, ns=(OLD_NS, OLD_NS))
    want = hashlib.sha256(b"config.jsonconfig.jsonmodel.safetensorsmodel.safetensors").hexdigest()
    assert wd.cached_sha256(d) == wd.cached_sha256(d) == want
    assert calls[0] == 1
    (d / "config.json").write_text("CONFIG.json")  # same size
    os.utime(d / "config.json", ns=(OLD_NS, OLD_NS))
    assert wd.cached_sha256(d) != want
    assert calls[0] == 2


def test_the_backbone_records_the_cached_digest(tmp_path: Path, cache: Path, calls: list[int]) -> None:
    """`FrozenBackbone.weights_sha256` goes through the cache: a second backbone of the same file (as a second
    process would make) does not read it again."""
    from geodino.backbones import load_backbone
    from tests.helpers import four_band_backbone

    f = four_band_backbone(tmp_path / "tiny.safetensors")
    os.utime(f, ns=(OLD_NS, OLD_NS))
    want = hashlib.sha256(f.read_bytes()).hexdigest()
    assert load_backbone(str(f)).weights_sha256 == want
    assert load_backbone(str(f)).weights_sha256 == want
    assert calls[0] == 1


def test_a_write_the_storage_refuses(tmp_path: Path, cache: Path, calls: list[int], monkeypatch, capsys) -> None:
    """The storage refuses the entry (read-only mount, quota; also as root, whom permissions do not stop)."""
    import contextlib

    import geodino.io

    @contextlib.contextmanager
    def refusing(path, **kw):
        raise PermissionError(13, "Permission denied", str(path))
        yield path  # pragma: no cover

    monkeypatch.setattr(geodino.io, "atomic_path", refusing)
    f = _weights(tmp_path)
    assert wd.cached_sha256(f) == wd.cached_sha256(f) == hashlib.sha256(f.read_bytes()).hexdigest()
    assert calls[0] == 2
    assert capsys.readouterr().err == ""
