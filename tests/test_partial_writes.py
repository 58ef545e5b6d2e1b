"""A writer that fails part-way (a kill, a full disk) leaves no cut-off file under the final name: the final name is
absent, or holds the earlier output untouched, and no temporary is left beside it. One writer of each kind is made
to fail inside its serializer, after some bytes have reached the disk: YAML, JSON, PNG, safetensors (the feature
cache), torch, a folder export (HF), a GeoTIFF (the demo scene), and `geodino embed`'s COG on a full disk."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _left(folder: Path) -> list[str]:
    """Temporaries, asides and staging files of any writer in `folder` (nothing should be left)."""
    return sorted(p.name for p in folder.iterdir() if any(t in p.name for t in (".tmp-", ".old-", ".staging", ".L0")))


def _write_then_fail(target: str | Path, exc: BaseException = FULL) -> None:
    """What a serializer killed mid-write leaves: some bytes in the file it was writing, then the error."""
    Path(target).write_bytes(b"\x00partial")
    raise exc


@pytest.fixture
def text_writes_fail(monkeypatch):
    """`Path.write_text` writes half the text, then the disk is full."""

    def half(self: Path, data: str, *args, **kwargs) -> int:
        with open(self, "w", encoding=kwargs.get("encoding")) as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_text", half)


@pytest.mark.parametrize("earlier", [False, True])
def test_a_sensor_yaml_cut_off_is_absent_or_the_earlier_one(tmp_path, monkeypatch, earlier) -> None:
    from geodino.data.sensor_yaml import save_sensor_yaml
    from geodino.data.sensors import Sensor

    out = tmp_path / "s.yaml"
    if earlier:
        save_sensor_yaml(Sensor("old", ("a", "b"), 1.0, (0, 0), (1, 1), False), out)
    before = out.read_bytes() if earlier else None
    monkeypatch.setattr(Path, "write_text", lambda self, data, *a, **k: _write_then_fail(self))
    with pytest.raises(OSError, match="No space"):
        save_sensor_yaml(Sensor("new", ("a", "b"), 1.0, (0, 0), (1, 1), False), out)
    assert (out.read_bytes() if out.exists() else None) == before
    assert _left(tmp_path) == []


def test_a_stac_item_cut_off_leaves_no_json(tmp_path, text_writes_fail) -> None:
    from geodino.embed.stac_items import _write_json

    out = tmp_path / "f.stac.json"
    with pytest.raises(OSError, match="No space"):
        _write_json(out, {"type": "Feature", "id": "f", "properties": {"x": list(range(100))}})
    assert not out.exists() and _left(tmp_path) == []


def test_a_png_cut_off_leaves_the_earlier_png(tmp_path, monkeypatch) -> None:
    from matplotlib.figure import Figure

    from geodino.viz.figures import save_figure

    out = tmp_path / "curves.png"
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    save_figure(fig, out)
    before = out.read_bytes()
    assert before.startswith(b"\x89PNG")
    monkeypatch.setattr(Figure, "savefig", lambda self, fname, **k: _write_then_fail(fname))
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [0, 1])
    with pytest.raises(OSError, match="No space"):
        save_figure(fig, out)
    assert out.read_bytes() == before and _left(tmp_path) == []


def test_a_feature_cache_entry_cut_off_is_never_read_as_one(tmp_path, monkeypatch) -> None:
    """The cache is optional (a full disk warns and the run goes on), so the partial entry must not stay under
    its name: the next run would load it as the features."""
    import safetensors.torch

    from geodino.eval import features

    features.forget_unwritable_caches()
    fs = features.FeatureSet(
        cls=torch.ones(3, 1, 4), patch_mean=torch.ones(3, 1, 4), targets=torch.arange(3), key="k", layers=[0], meta={}
    )
    out = tmp_path / "cache" / "k.safetensors"
    monkeypatch.setattr(safetensors.torch, "save_file", lambda tensors, name, **k: _write_then_fail(name))
    with pytest.warns(UserWarning, match="could not be written"):
        features._save(out, fs)
    assert not out.parent.exists()  # no partial entry, no temporary, nor the folder made for them
    features.forget_unwritable_caches()


def test_a_pth_cut_off_leaves_the_earlier_weights(tmp_path, monkeypatch) -> None:
    from geodino.models.checkpoints.save import save_pth

    out = tmp_path / "m.pth"
    save_pth({"w": torch.zeros(2)}, out)
    before = out.read_bytes()
    monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: (f.write(b"PK\x03\x04cut"), _write_then_fail(f.name)))
    with pytest.raises(OSError, match="No space"):
        save_pth({"w": torch.ones(2)}, out)
    assert out.read_bytes() == before and _left(tmp_path) == []


def test_an_hf_folder_cut_off_leaves_the_earlier_export(tmp_path, monkeypatch) -> None:
    """A folder output is written as a temporary sibling folder and swapped in whole: the earlier folder stays
    as it was, with no half-written model.safetensors in it and no temporary folder beside it."""
    import safetensors.torch

    from geodino.models import build_model
    from geodino.models.checkpoints.hf import write_hf_folder

    torch.manual_seed(0)
    state = build_model("vit_tiny", patch_size=8, in_chans=3, depth=1).state_dict()
    out = tmp_path / "hf"
    write_hf_folder(state, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "model.safetensors" in before
    monkeypatch.setattr(safetensors.torch, "save_file", lambda tensors, name, **k: _write_then_fail(name))
    with pytest.raises(OSError, match="No space"):
        write_hf_folder({k: v * 2 if k.endswith(".weight") else v for k, v in state.items()}, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _left(tmp_path) == []
    monkeypatch.undo()
    fresh = tmp_path / "hf2"  # no earlier export: no folder at all
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(safetensors.torch, "save_file", lambda tensors, name, **k: _write_then_fail(name))
        with pytest.raises(OSError, match="No space"):
            write_hf_folder(state, fresh)
    assert not fresh.exists() and _left(tmp_path) == []


def test_a_demo_scene_cut_off_leaves_no_geotiff(tmp_path, monkeypatch) -> None:
    """The demo's scene, land-cover map and chips: a write failing after the GeoTIFF was created left `scene.tif` (a
    header and no pixels) for the demo's later steps, or a user, to read as the scene."""
    from rasterio.io import DatasetWriter

    from geodino.demo_data import write_demo_scene, write_labelled_chips

    def fails(self, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.name)

    monkeypatch.setattr(DatasetWriter, "write", fails)
    folder = tmp_path / "scene"
    with pytest.raises(OSError, match="No space"):
        write_demo_scene(folder / "scene.tif", size=64)
    assert sorted(p.name for p in folder.iterdir()) == []
    monkeypatch.undo()
    scene, landcover = write_demo_scene(folder / "scene.tif", size=64)
    assert sorted(p.name for p in folder.iterdir()) == [scene.name, landcover.name]
    monkeypatch.setattr(DatasetWriter, "write", fails)  # its labelled chips, each a file of its own
    with pytest.raises(OSError, match="No space"):
        write_labelled_chips(scene, landcover, tmp_path / "chips", chip=16, per_class=2)
    assert [p.name for p in (tmp_path / "chips").rglob("*") if p.is_file()] == []


def test_a_full_disk_while_embed_writes_its_cog_is_one_line_and_resumes(tmp_path, capsys, monkeypatch) -> None:
    """The COG copy fails part-way on a full disk: one line naming the output (not its temporary) and the disk,
    exit code 1, no cut-off f.tif nor any temporary beside it, the work folder kept; --resume then finishes."""
    import rasterio.shutil

    from geodino import cli
    from geodino.embed.pipeline import work_dir_for
    from tests.embed.conftest import random_image, write_tif

    src, out = write_tif(tmp_path / "in.tif", random_image(32, 32)), tmp_path / "out" / "f.tif"
    args = ["embed", str(src), "-b", "arch:vit_tiny?depth=1&seed=0&patch_size=8", "--out", str(out)]
    args += ["--tile", "32", "--overlap", "8", "--no-progress"]
    real_copy = rasterio.shutil.copy

    def copy(source, target, **kwargs):
        if Path(target).name.startswith(".f.tmp-"):  # the COG itself, not another copy
            _write_then_fail(target, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target)))
        return real_copy(source, target, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(rasterio.shutil, "copy", copy)
        capsys.readouterr()
        assert cli.main(args) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("geodino: error")]
    assert len(err) == 1 and f"writing {out} (No space left on device)" in err[0] and "--resume" in err[0], err
    assert not out.exists() and _left(out.parent) == [] and work_dir_for(out).is_dir()
    assert cli.main([*args, "--resume"]) == 0 and out.is_file()
    assert _left(out.parent) == [] and not work_dir_for(out).exists()


def test_a_checkpoint_cut_off_by_a_full_disk_leaves_the_newest_complete_one(tmp_path) -> None:
    """Half of step 2's checkpoint reached the disk before it filled up: one error naming the checkpoint and the
    disk (exit code 1), step 1 and `last.ckpt` pointing at it untouched, no step 2 and no temporary."""
    from geodino.errors import TrainingError
    from geodino.train.checkpoint_callback import CheckpointCallback
    from tests.train.test_durable_checkpoints import _trainer

    def complete(path, weights_only=False):
        Path(path).write_bytes(b"step 1, whole")

    def cut_off(path, weights_only=False):
        _write_then_fail(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)))

    folder = tmp_path / "checkpoints"
    callback = CheckpointCallback(folder, every_n_steps=1)
    callback.save(_trainer(1, complete))
    with pytest.raises(TrainingError) as info:
        callback.save(_trainer(2, cut_off))
    assert info.value.exit_code == 1
    assert f"{folder / 'step_00000002.ckpt'} (No space left on device)" in str(info.value)
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt", "step_00000001.ckpt"]
    assert (folder / "last.ckpt").read_bytes() == b"step 1, whole"
