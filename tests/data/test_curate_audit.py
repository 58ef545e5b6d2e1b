"""`geodino data curate` on the audit's findings: the embedding cache follows every tile and file, failed runs
leave nothing, a reused output folder loses only the earlier run's own files, clipped cluster counts are said,
unreadable images are named (and skippable), config overrides, and the console lines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from geodino import cli
from geodino.data.config import SourceConfig
from geodino.data.curate import CurateConfig
from geodino.data.curate.embed import embed_tiles
from geodino.data.curate.report import markdown
from geodino.data.curate.tiles import Tiles
from tests.data.test_curate import SPEC, _image_archive
from tests.embed.conftest import write_tif
from tests.test_bad_inputs import one_line_exit_2


def _png(path: Path, value: int | tuple[int, int, int], size: int = 4) -> Path:
    from PIL import Image

    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)
    return path


class _MeanColour:
    """A stand-in backbone whose CLS token is the tile's mean colour: cheap enough for thousands of tiles."""

    fingerprint = spec = "mean-colour"
    patch_size = 1

    @staticmethod
    def normalize(x: torch.Tensor) -> torch.Tensor:
        return x

    @staticmethod
    def features(x: torch.Tensor, layers: str = "last") -> tuple[None, list[torch.Tensor]]:
        return None, [x.mean(dim=(2, 3)) + torch.tensor([1.0, 0.0, 0.0])]


def _embed(root: Path, folder: Path) -> dict:
    tiles = Tiles([SourceConfig(type="images", paths=[str(root)])])
    return embed_tiles(tiles, _MeanColour(), folder, CurateConfig(chunk=4096, batch_size=4096), progress=False)


def test_cache_key_covers_every_tile_and_each_files_contents(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2000):  # above 1,000 tiles the old key named only every 2nd tile
        _png(root / f"{i:04d}.png", tuple(int(v) for v in rng.integers(0, 200, 3)))
    white = _png(root / "1998.png", 250)
    folder = tmp_path / "emb"
    first = _embed(root, folder)
    assert first["cloud"][1998] == 1.0
    # (a) tile 1 (an odd position) replaced by another file at the same position
    (root / "0001.png").unlink()
    _png(root / "0001x.png", (0, 0, 255))
    # (b) the white tile overwritten with grey under the same name
    stat = white.stat()
    _png(white, 90)
    os.utime(white, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = _embed(root, folder)
    fresh = _embed(root, tmp_path / "fresh")
    for key in ("emb", "nodata", "cloud"):
        np.testing.assert_array_equal(again[key], fresh[key])
    assert again["cloud"][1998] == 0.0 and not np.allclose(again["emb"][1], first["emb"][1])


def test_failed_run_leaves_nothing_and_an_interrupted_run_resumes(tmp_path, capsys, monkeypatch):
    from geodino.backbones import FrozenBackbone

    root = _image_archive(tmp_path / "archive")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "list.txt").write_text(f"{root / 'green' / '00.png'}\nnothere.jpg\n")
    (tmp_path / "bad" / "fake.jpg").write_text("not an image")
    (tmp_path / "bad" / "list2.txt").write_text(f"{root / 'green' / '00.png'}\nfake.jpg\n")
    run = ("data", "curate", "-b", SPEC, "--size", "1", "--clusters", "1", "--no-progress", "-o")
    # nothing computed: no OUT, no embeddings/meta.json (a listed file that does not exist is named with its line)
    for bad, says in (("list.txt", "list.txt, line 2: image"), ("list2.txt", "cannot be decoded")):
        one_line_exit_2(capsys, tmp_path, *run, tmp_path / "out", tmp_path / "bad" / bad, expect=(says,))
        assert not (tmp_path / "out").exists()
    # a reused folder stays as it was
    out = tmp_path / "cur"
    argv = [*run, str(out), str(root), "--chunk", "8", "--size", "9", "--clusters", "4", "2", "--dedup", "0.999"]
    assert cli.main(argv) == 0
    meta = (out / "embeddings" / "meta.json").read_text()
    bad = (*run, out, tmp_path / "bad" / "list2.txt")  # it exists and fails only when fake.jpg is decoded
    one_line_exit_2(capsys, tmp_path, *bad, expect=("holds an earlier curation of other inputs",))
    one_line_exit_2(capsys, tmp_path, *bad, "--overwrite", expect=("fake.jpg",))
    assert (out / "embeddings" / "meta.json").read_text() == meta
    # an interrupted run keeps its chunks (and meta.json) and resumes after them
    interrupted = tmp_path / "int"
    argv[argv.index(str(out))] = str(interrupted)
    original, calls = FrozenBackbone.features, []

    def interrupt(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *a, **k)

    monkeypatch.setattr(FrozenBackbone, "features", interrupt)
    assert cli.main(argv) == 130
    assert sorted(p.name for p in (interrupted / "embeddings").iterdir()) == ["meta.json", "part_00000.npz"]
    calls.clear()
    monkeypatch.setattr(FrozenBackbone, "features", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    assert cli.main(argv) == 0
    assert len(calls) == 3  # chunks 1..3 of 4 (8, 8, 8, 4 tiles): chunk 0 came from the cache
    # a truncated chunk is computed again, a damaged meta.json starts afresh: no traceback either way
    part = interrupted / "embeddings" / "part_00002.npz"
    part.write_bytes(part.read_bytes()[:500])
    calls.clear()
    assert cli.main(argv) == 0 and len(calls) == 1
    (interrupted / "embeddings" / "meta.json").write_text("")
    calls.clear()
    assert cli.main(argv) == 0 and len(calls) == 4


def test_rerun_removes_only_the_files_the_earlier_run_wrote(tmp_path, capsys):
    rng = np.random.default_rng(0)
    tif = write_tif(tmp_path / "scene.tif", rng.integers(1, 255, (3, 64, 64)).astype(np.uint8))
    out = tmp_path / "cur"
    common = ["-b", SPEC, "-o", str(out), "--size", "2", "--clusters", "2", "--no-progress"]
    assert cli.main(["data", "curate", str(tif), "--type", "raster", "--tile-size", "32", *common]) == 0
    assert (out / "map.png").exists()
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    root = _image_archive(tmp_path / "archive")
    # another curation (other inputs) is refused unless --overwrite
    argv = ["data", "curate", str(root), *common]
    said = f"--out {out} (out_dir= in Python) holds an earlier curation of other inputs"
    one_line_exit_2(capsys, tmp_path, *argv, expect=(said,))
    assert cli.main([*argv, "--overwrite"]) == 0
    stdout = capsys.readouterr().out
    assert not (out / "map.png").exists()
    assert (out / "notes.txt").read_text() == "mine" and (out / "embeddings" / "meta.json").exists()
    report = json.loads((out / "report.json").read_text())
    assert all((out / f).is_file() for f in report["files"]) and report["stale_files_removed"] == ["map.png"]
    assert sum("earlier run" in line and "map.png" in line for line in stdout.splitlines()) == 1


def test_a_folder_of_another_curation_is_refused_and_the_same_one_reuses_its_cache(tmp_path, capsys, monkeypatch):
    """Re-running the same curation (same inputs and backbone, other --size/--dedup) into its folder re-uses every
    cached chunk; another backbone or other inputs are refused in one line naming the folder, unless --overwrite
    (which replaced the cached embeddings silently before)."""
    from geodino.backbones import FrozenBackbone

    root = _image_archive(tmp_path / "archive")
    out = tmp_path / "cur"
    common = ["-o", str(out), "--clusters", "2", "--chunk", "8", "--no-progress"]
    first = ["data", "curate", str(root), "-b", SPEC, "--size", "4", *common]
    assert cli.main(first) == 0
    meta = json.loads((out / "embeddings" / "meta.json").read_text())
    original, calls = FrozenBackbone.features, []
    monkeypatch.setattr(FrozenBackbone, "features", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    assert cli.main(["data", "curate", str(root), "-b", SPEC, "--size", "6", "--dedup", "0.999", *common]) == 0
    assert calls == []  # the same curation: every chunk from the cache
    other = SPEC.replace("seed=0", "seed=1")
    hint = (
        "this run would replace its cached embeddings: pass --overwrite (overwrite=True in Python) to do so, or "
        "choose another --out folder"
    )
    said = f"--out {out} (out_dir= in Python) holds an earlier curation with another backbone ({SPEC}; this run "
    said += f"{other}); {hint}"
    line = one_line_exit_2(capsys, tmp_path, "data", "curate", root, "-b", other, "--size", "4", *common)
    assert line == f"geodino: error: {said}"
    line = one_line_exit_2(capsys, tmp_path, "data", "curate", root / "green", "-b", SPEC, "--size", "2", *common)
    assert f"of other inputs (28 tiles of {root}; this run 14 tiles of {root / 'green'}); {hint}" in line
    assert json.loads((out / "embeddings" / "meta.json").read_text()) == meta and calls == []
    assert cli.main(["data", "curate", str(root), "-b", other, "--size", "4", "--overwrite", *common]) == 0
    assert json.loads((out / "embeddings" / "meta.json").read_text())["backbone"] == other and len(calls) == 4
    # a meta.json from before this check (no backbone_fingerprint / tile_list): its key alone says "the same"
    record = json.loads((out / "embeddings" / "meta.json").read_text())
    for key in ("backbone_fingerprint", "tile_list", "inputs"):
        record.pop(key)
    (out / "embeddings" / "meta.json").write_text(json.dumps(record))
    calls.clear()
    assert cli.main(["data", "curate", str(root), "-b", other, "--size", "5", *common]) == 0 and calls == []
    (out / "embeddings" / "meta.json").write_text(json.dumps(record))
    one_line_exit_2(capsys, tmp_path, *first, expect=(f"(backbone {other}, 28 tiles) recorded by an older geodino",))


def test_clipped_cluster_counts_are_warned_and_the_report_ratio_is_true(tmp_path, capsys):
    root = _image_archive(tmp_path / "archive")
    out = tmp_path / "cur"
    argv = ["data", "curate", str(root), "-b", SPEC, "-o", str(out), "--size", "5", "--clusters", "500", "10"]
    with pytest.warns(UserWarning) as caught:
        assert cli.main([*argv, "--no-progress", "--dedup", "1.0", "--max-cloud", "1.0"]) == 0
    texts = [str(w.message) for w in caught if "--clusters" in str(w.message)]
    assert len(texts) == 1 and "level 1 asks for 500 clusters but has only 28 tiles" in texts[0]
    assert "uses 28" in texts[0] and "level 2" not in texts[0]
    report = {
        "tiles": 6,
        "removed": {"nodata": 0, "cloud": 0, "duplicate": 0},
        "clustered": 6,
        "levels": [3, 1],
        "kept": 6,
        "top_clusters": {"before": [6], "after": [6]},
        "level1_clusters": {"before": [1, 2, 3], "after": [0, 2, 4]},
    }
    text = markdown(report)
    assert "non-empty clusters 3.0 -> 2.0" in text and "1 of 3 clusters empty before" not in text
    assert "0 of 3 clusters empty before, 1 after sampling" in text


def test_unreadable_image_is_named_and_on_error_skip_drops_it(tmp_path, capsys):
    root = _image_archive(tmp_path / "archive")
    lst = tmp_path / "list.txt"
    # a listed file that does not exist is a broken list (named with its line, tests/data/test_path_lists.py); one
    # that exists and does not decode is an unreadable image
    (tmp_path / "nothere.jpg").write_text("not an image")
    lst.write_text("".join(f"{p}\n" for p in sorted((root / "green").glob("*.png"))[:6]) + "nothere.jpg\n")
    run = ["data", "curate", str(lst), "-b", SPEC, "--size", "3", "--clusters", "2", "--no-progress", "-o"]
    line = one_line_exit_2(capsys, tmp_path, *run, tmp_path / "o", expect=("nothere.jpg", "--on-error skip"))
    assert "image #" not in line
    with pytest.warns(UserWarning, match="nothere.jpg"):
        assert cli.main([*run, str(tmp_path / "o"), "--on-error", "skip", "--dedup", "1.0"]) == 0
    tiles = pd.read_parquet(tmp_path / "o" / "tiles.parquet")
    gone = tiles[tiles.path.str.endswith("nothere.jpg")]
    assert gone.status.tolist() == ["nodata"] and gone.nodata_share.tolist() == [1.0]
    assert not pd.read_parquet(tmp_path / "o" / "curated.parquet").path.str.endswith("nothere.jpg").any()


def test_config_overrides_and_a_missing_config_path(tmp_path, capsys):
    root = _image_archive(tmp_path / "archive")
    cfg = tmp_path / "pretrain.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"sources": [{"name": "chips", "type": "images", "paths": ["nope/"]}]}}))
    base = ["data", "curate", "--config", str(cfg), "-b", SPEC, "--size", "3", "--clusters", "2", "--no-progress"]
    one_line_exit_2(
        capsys, tmp_path, *base, "-o", tmp_path / "o", expect=(f"{cfg}: data.sources[0].paths: nope/ does not exist",)
    )
    override = f"data.sources=[{{name: chips, type: images, paths: [{root}]}}]"
    assert cli.main([*base, override, "-o", str(tmp_path / "a")]) == 0  # among the positionals
    assert cli.main([*base, "-o", str(tmp_path / "b"), override]) == 0  # after an option
    for out in ("a", "b"):
        report = json.loads((tmp_path / out / "report.json").read_text())
        assert report["tiles"] == 28 and report["config"]["overrides"] == [override]


def test_console_lines_name_real_files_and_counts_in_words(tmp_path, capsys):
    root = _image_archive(tmp_path / "archive")
    cfg = tmp_path / "two.yaml"
    sources = [{"name": n, "type": "images", "paths": [str(root / n)]} for n in ("green", "blue")]
    cfg.write_text(yaml.safe_dump({"data": {"sources": sources}}))
    out = tmp_path / "cur"
    capsys.readouterr()
    args = ["-b", SPEC, "--size", "4", "--clusters", "2", "--dedup", "0.999", "--no-progress", "-o", f"{out}/"]
    assert cli.main(["data", "curate", "--config", str(cfg), *args]) == 0
    stdout = capsys.readouterr().out
    assert f"-> {out}/curated_green.parquet, {out}/curated_blue.parquet" in stdout
    assert "//" not in stdout and "<source>" not in stdout
    assert cli.main(["data", "curate", str(root / "green"), *args, "--overwrite"]) == 0  # other inputs
    assert f"-> {out}/curated.parquet\n" in capsys.readouterr().out
    one_line_exit_2(
        capsys,
        tmp_path / "archive",
        "data",
        "curate",
        root,
        *args[:-1],
        tmp_path / "o2",
        "--size",
        "27",
        "--dedup",
        "0.999",
        expect=("(0 nodata, 2 cloud, ", " duplicates)"),
    )


def test_a_store_folder_is_stamped_by_the_files_inside(tmp_path):
    """A Zarr store is a folder: rewriting a chunk inside leaves the folder's own mtime as it was, so the cache
    stamp must come from the files in it."""
    import os

    from geodino.io import content_stamp as _stamp

    store = tmp_path / "cube.zarr"
    (store / "x").mkdir(parents=True)
    chunk = store / "x" / "0.0"
    chunk.write_bytes(b"aaaa")
    before, folder_mtime = _stamp(str(store)), os.stat(store).st_mtime_ns
    chunk.write_bytes(b"bbbb")  # same size, new contents
    os.utime(chunk, ns=(os.stat(chunk).st_atime_ns, os.stat(chunk).st_mtime_ns + 1_000_000))
    assert os.stat(store).st_mtime_ns == folder_mtime and _stamp(str(store)) != before
    assert _stamp(str(tmp_path / "gone.tif")) == "?"
