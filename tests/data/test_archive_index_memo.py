"""The raster index kept in memory per process (`archive_index._MEMO`): a second archive of the same unchanged files
and settings reads no header again (pretraining builds its loader twice: the probe batch, then training), and
anything that could make the two differ indexes again."""

from __future__ import annotations

import os
import time
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.data import archive_index
from geodino.data.archive import RasterArchive
from geodino.data.sensors import Sensor
from geodino.errors import InputError

HOUR_NS = 3600 * 10**9
S4 = Sensor(name="t4", bands=("b1", "b2", "b3", "b4"), scale=1e-4, mean=(0.1,) * 4, std=(0.05,) * 4, rgb_like=False)


def _write(path: Path, *, crs: str | None = "EPSG:32633", value: int = 1, age_ns: int = HOUR_NS) -> Path:
    """A 4-band 8x8 uint16 GeoTIFF last modified `age_ns` ago (older than io_stamps.RACY_NS by default)."""
    profile = dict(driver="GTiff", width=8, height=8, count=4, dtype="uint16", transform=from_origin(0, 80, 10, 10))
    with rasterio.open(path, "w", crs=crs, **profile) as ds:
        ds.write(np.full((4, 8, 8), value, dtype="uint16"))
    then = time.time_ns() - age_ns
    os.utime(path, ns=(then, then))
    return path


@pytest.fixture
def ahead(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How far (ns) the memo's clock runs ahead of this one: an hour, so files the tests wrote (ctime now) count as
    settled; set [0] for the real clock."""
    shift = [HOUR_NS]
    real = time.time_ns
    monkeypatch.setattr(archive_index, "time", types.SimpleNamespace(time_ns=lambda: real() + shift[0]))
    return shift


@pytest.fixture
def indexed(monkeypatch: pytest.MonkeyPatch, ahead: list[int]) -> list[str]:
    """An empty memo, and the files each `_index` call read (one entry per call)."""
    monkeypatch.setattr(archive_index, "_MEMO", OrderedDict(), raising=False)
    calls: list[str] = []
    real = RasterArchive._index

    def counting(self: RasterArchive, progress: bool) -> list:
        calls.append(",".join(os.path.basename(f) for f in self.files))
        return real(self, progress)

    monkeypatch.setattr(RasterArchive, "_index", counting)
    return calls


def test_same_files_and_settings_are_indexed_once(tmp_path: Path, indexed: list[str]) -> None:
    files = [str(_write(tmp_path / f"c{i}.tif", value=i)) for i in range(3)]
    a = RasterArchive(files, sensor=S4, progress=False)
    b = RasterArchive(files, sensor=S4, progress=False)
    assert len(indexed) == 1  # the old code read every header again
    assert b.scenes == a.scenes and len(b.scenes) == 3
    RasterArchive(files, sensor=S4, bands=["b3", "b2"], progress=False)  # other settings: indexed
    assert len(indexed) == 2


def test_a_changed_or_fresh_file_is_indexed_again(tmp_path: Path, indexed: list[str], ahead: list[int]) -> None:
    files = [str(_write(tmp_path / f"c{i}.tif")) for i in range(2)]
    RasterArchive(files, sensor=S4, progress=False)
    _write(Path(files[1]), crs="EPSG:32632", age_ns=HOUR_NS // 2)  # rewritten: another mtime
    b = RasterArchive(files, sensor=S4, progress=False)
    assert len(indexed) == 2 and "32632" in b.scenes[1].crs
    ahead[0] = 0
    fresh = [str(_write(tmp_path / "new.tif", age_ns=0))]  # changed within RACY_NS: its stat is not trusted yet
    RasterArchive(fresh, sensor=S4, progress=False)
    RasterArchive(fresh, sensor=S4, progress=False)
    assert len(indexed) == 4


def test_a_rewrite_dated_back_to_its_old_mtime_is_indexed_again(
    tmp_path: Path, indexed: list[str], ahead: list[int]
) -> None:
    """`cp -p`, `touch -d` and archive extraction set the mtime to any time: an old one hid a rewrite of the same
    size from the memo (it judged by mtime). The ctime every write sets is fresh, then differs from the memo's."""
    path = _write(tmp_path / "c.tif")
    dated = os.stat(path).st_mtime_ns
    RasterArchive([str(path)], sensor=S4, progress=False)  # settled: kept
    _write(path, crs="EPSG:32632")
    os.utime(path, ns=(dated, dated))  # same size, same mtime: the index's key is unchanged
    ahead[0] = 0  # right after the rewrite: its ctime is within RACY_NS
    b = RasterArchive([str(path)], sensor=S4, progress=False)
    assert "32632" in b.scenes[0].crs and len(indexed) == 2  # the old code served EPSG:32633 from the memo
    ahead[0] = HOUR_NS  # past the window: the memo's name holds the ctime of the old index's file
    c = RasterArchive([str(path)], sensor=S4, progress=False)
    assert "32632" in c.scenes[0].crs and len(indexed) == 3


def test_a_file_with_a_future_mtime_is_kept_by_its_ctime(tmp_path: Path, indexed: list[str]) -> None:
    """`touch -d 2100-01-01` or an archive made on a clock running ahead: by the later of mtime and ctime such a file
    looked changed after now forever and every archive of it read its headers again (b8d8448)."""
    path = _write(tmp_path / "c.tif")
    future = time.time_ns() + 100 * 365 * 86400 * 10**9
    os.utime(path, ns=(future, future))
    for _ in range(3):
        RasterArchive([str(path)], sensor=S4, progress=False)
    assert len(indexed) == 1  # judged by the mtime too: 3


def test_an_index_that_kept_a_file_without_crs_is_not_reused_where_a_crs_is_required(
    tmp_path: Path, indexed: list[str]
) -> None:
    files = [str(_write(tmp_path / "a.tif")), str(_write(tmp_path / "nocrs.tif", crs=None))]
    listed = RasterArchive(files, require_crs=False, uniform=False, progress=False)  # as `geodino data index`
    assert len(listed.scenes) == 2
    with pytest.raises(InputError, match=r"nocrs\.tif: has no CRS"):
        RasterArchive(files, sensor=S4, progress=False)
    assert len(indexed) == 2
    # the same settings but require_crs: the memo's name alone tells them apart (the calls above differ in sensor)
    assert len(RasterArchive(files, sensor=S4, require_crs=False, progress=False).scenes) == 2
    with pytest.raises(InputError, match=r"nocrs\.tif: has no CRS"):
        RasterArchive(files, sensor=S4, progress=False)  # a memo named without require_crs served both scenes
    assert len(indexed) == 4


def test_a_sensor_of_the_same_name_with_other_bands_is_indexed_again(tmp_path: Path, indexed: list[str]) -> None:
    """The index key names a sensor by its name; a YAML edited under the same name (other band names, nodata) is
    another sensor to the memo, which holds the whole sensor."""
    import dataclasses

    files = [str(_write(tmp_path / "a.tif"))]
    assert RasterArchive(files, sensor=S4, progress=False).scenes[0].band_names == ("b1", "b2", "b3", "b4")
    edited = dataclasses.replace(S4, bands=("w", "x", "y", "z"))
    assert RasterArchive(files, sensor=edited, progress=False).scenes[0].band_names == ("w", "x", "y", "z")
    assert len(indexed) == 2  # a memo named by the sensor's name alone served b1..b4


def test_an_index_that_skipped_a_file_is_not_kept(tmp_path: Path, indexed: list[str]) -> None:
    files = [str(_write(tmp_path / "a.tif")), str(tmp_path / "bad.tif")]
    Path(files[1]).write_bytes(b"not a tiff")
    old = time.time_ns() - HOUR_NS
    os.utime(files[1], ns=(old, old))
    for _ in range(2):
        with pytest.warns(UserWarning, match=r"bad\.tif"):
            archive = RasterArchive(files, sensor=S4, on_error="skip", progress=False)
        assert [p for p, _ in archive.skipped] == [files[1]]
    assert len(indexed) == 2  # it may be fixed by then: read again, skipped again, said again


def test_scenes_share_one_crs_text_and_band_tuples(tmp_path: Path, indexed: list[str]) -> None:
    """The scenes hold one CRS WKT and band tuple between them (a copy each was ~650 of a scene's ~1.4 KB), fresh
    and read back from `index_cache`; a file of another CRS keeps its own."""
    files = [str(_write(tmp_path / f"c{i}.tif", age_ns=0)) for i in range(3)]
    files.append(str(_write(tmp_path / "d.tif", crs="EPSG:32632", age_ns=0)))
    cache = tmp_path / "index.json"
    for _ in range(2):  # indexed, then read from the cache (as `geodino data index` lists an archive)
        scenes = RasterArchive(files, index_cache=cache, uniform=False, progress=False).scenes
        first = scenes[0]
        assert all(s.crs is first.crs for s in scenes[1:3]) and scenes[3].crs != first.crs
        assert all(s.band_names is first.band_names and s.band_indexes is first.band_indexes for s in scenes)
    assert len(indexed) == 1
    # a sensor's band order makes new band tuples per scene (`canonical_scenes`); the CRS text stays shared
    scenes = RasterArchive(files[:3], sensor=S4, progress=False).scenes
    assert scenes[1].crs is scenes[0].crs and scenes[2].crs is scenes[0].crs


def test_headers_are_read_without_listing_the_folder_and_sidecars_still_count(
    tmp_path: Path, indexed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GDAL listed a file's whole folder on each open (up to 1,000 names) while the index read its header: the scan
    now opens with GDAL_DISABLE_READDIR_ON_OPEN=TRUE (unless the environment sets it), and GDAL still finds a
    file's `.aux.xml` scale and `.msk` mask by their names."""
    path = _write(tmp_path / "a.tif")
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=False), rasterio.open(path, "r+") as ds:
        ds.write_mask(np.full((8, 8), 255, dtype="uint8"))
    bands = "".join(f'<PAMRasterBand band="{b}"><Scale>0.0001</Scale></PAMRasterBand>' for b in range(1, 5))
    Path(f"{path}.aux.xml").write_text(f"<PAMDataset>{bands}</PAMDataset>")
    assert Path(f"{path}.msk").is_file()
    seen: list[object] = []
    real_open = rasterio.open

    def recording(*args: object, **kw: object) -> object:
        seen.append(rasterio.env.getenv().get("GDAL_DISABLE_READDIR_ON_OPEN") if rasterio.env.hasenv() else None)
        return real_open(*args, **kw)

    monkeypatch.setattr(rasterio, "open", recording)
    monkeypatch.delenv("GDAL_DISABLE_READDIR_ON_OPEN", raising=False)
    scene = RasterArchive([str(path)], uniform=False, progress=False).scenes[0]
    assert seen == ["TRUE"]  # the old code opened with GDAL's default (the folder listed)
    assert scene.scales == (0.0001,) * 4 and scene.has_mask
    monkeypatch.setenv("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")  # the user's setting is theirs
    RasterArchive([str(path)], band_names=["w", "x", "y", "z"], uniform=False, progress=False)
    assert seen[1] != "TRUE"


def test_an_index_file_removed_between_its_check_and_its_read_is_rebuilt_not_a_traceback(tmp_path: Path) -> None:
    class Gone(type(tmp_path)):  # a file another job removes right after is_file() saw it
        def is_file(self) -> bool:
            return True

        def read_text(self, *args, **kwargs) -> str:
            raise FileNotFoundError(2, "No such file or directory", str(self))

    archive = types.SimpleNamespace(index_cache=Gone(tmp_path / "index.json"))
    assert archive_index._stored(archive, {"k": 1}) is None  # was an uncaught FileNotFoundError
