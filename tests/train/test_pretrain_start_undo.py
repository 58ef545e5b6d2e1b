"""A refused pretraining start leaves the file system as it was. In a used run folder it had already removed a killed
run's half-written checkpoint and moved an old `hpc_ckpt_*.ckpt` (and, resuming from an earlier step, the later
checkpoints) aside into `checkpoints/ignored-*` / `abandoned-*` when the data, the band count, the resume checkpoint
or init_from was then refused. Now that housekeeping waits until every check passed (`geodino.train.run_start`, as
for distillation), config.yaml is written last, and a refused start leaves the folder byte for byte as it was; a new
folder is removed with the missing folders above it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from geodino.config import load_config
from geodino.errors import CheckpointError, ConfigError, InputError
from geodino.train.pretrain import PretrainConfig, pretrain
from tests.train.conftest import NODATA, write_config


def _cfg(tmp_path: Path, data: Path, out: Path, *overrides: str) -> PretrainConfig:
    return load_config(PretrainConfig, write_config(tmp_path / "c.yaml", out, data), list(overrides))


def _cases(tmp_path: Path, blank: Path) -> dict[str, tuple[list[str], type, str]]:
    """{kind: (overrides, error, the start of its line)}: start failures after the run folder is taken."""
    junk = tmp_path / "junk"
    junk.mkdir(exist_ok=True)
    (junk / "x.tif").write_text("not a tiff")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    return {
        "band count": (["ssl.student.in_chans=4"], InputError, "the data has 3 bands per image but ssl.student"),
        "all nodata": (
            [f"data.sources=[{{type: raster, paths: [{blank}], tile_size: 48, sensor: imagenet}}]"],
            InputError,
            f"source 'source0' ({blank / 'z.tif'}): {NODATA}",
        ),
        "unreadable data": (
            [f"data.sources=[{{type: raster, paths: [{junk}], tile_size: 48, sensor: imagenet}}]"],
            InputError,
            f"raster {junk / 'x.tif'}: cannot be read",
        ),
        "missing data": (
            ["data.sources=[{type: images, paths: [/no/such/dir]}]"],
            InputError,
            "image path /no/such/dir does not exist",
        ),
        "init_from unreadable": (
            [f"init_from={tmp_path / 'text.pth'}"],
            CheckpointError,
            f"checkpoint {tmp_path / 'text.pth'} cannot be read",
        ),
        "resume file missing": (
            [f"checkpoint.resume={tmp_path / 'gone.ckpt'}"],
            CheckpointError,
            f"checkpoint.resume={tmp_path / 'gone.ckpt'} not found",
        ),
    }


def _used_folder(out: Path) -> dict[str, bytes | None]:
    """A folder an earlier run used: config.yaml, log rows, Lightning's old `hpc_ckpt_1.ckpt`, a half-written
    checkpoint and a note of the user's."""
    (out / "checkpoints").mkdir(parents=True)
    (out / "logs").mkdir()
    (out / "config.yaml").write_text("name: earlier\n")
    (out / "logs" / "metrics.csv").write_text("step,loss\n0,9.0\n1,8.5\n2,8.0\n")
    (out / "hpc_ckpt_1.ckpt").write_bytes(b"mid-step")
    (out / "checkpoints" / ".step_00000003.ckpt.tmp-9").write_bytes(b"half")
    (out / "notes.txt").write_text("mine")
    return _snapshot(out)


def _snapshot(out: Path) -> dict[str, bytes | None]:
    """Every path under `out` (folders as None) with its bytes: what 'left as it was' compares."""
    return {p.relative_to(out).as_posix(): p.read_bytes() if p.is_file() else None for p in sorted(out.rglob("*"))}


@pytest.mark.parametrize(
    "kind",
    ["band count", "all nodata", "unreadable data", "missing data", "init_from unreadable", "resume file missing"],
)
def test_a_used_run_folder_is_left_as_it_was(tiny_data, blank, tmp_path, kind) -> None:
    extra, error, line = _cases(tmp_path, blank)[kind]
    out = tmp_path / "used"
    before = _used_folder(out)
    with pytest.raises(error) as err:
        pretrain(_cfg(tmp_path, tiny_data, out, *extra))
    assert str(err.value).startswith(line) and "\n" not in str(err.value), str(err.value)
    assert _snapshot(out) == before


@pytest.mark.parametrize(
    ("override", "error", "match"),
    [
        (["checkpoint.resume=never"], InputError, r"already holds checkpoints \(step_00000002\.ckpt\)"),
        ([], CheckpointError, r"step_00000002\.ckpt, is corrupt or truncated"),
    ],
    ids=["resume never", "corrupt newest"],
)
def test_a_checkpoint_that_refuses_the_start_leaves_the_folder_as_it_was(tiny_data, tmp_path, override, error, match):
    """A used folder with a checkpoint (here truncated): `checkpoint.resume=never` refuses any, `auto` the truncated
    newest one; either way the folder is left byte for byte as it was."""
    out = tmp_path / "used"
    _used_folder(out)
    (out / "checkpoints" / "step_00000002.ckpt").write_bytes(b"truncated")
    before = _snapshot(out)
    with pytest.raises(error, match=match):
        pretrain(_cfg(tmp_path, tiny_data, out, *override))
    assert _snapshot(out) == before


def _with_checkpoints(tiny_run: Path, out: Path) -> dict[str, bytes | None]:
    """The used folder with the tiny run's real step 1 and 2 checkpoints."""
    _used_folder(out)
    for name in ("step_00000001.ckpt", "step_00000002.ckpt"):
        shutil.copyfile(tiny_run / "checkpoints" / name, out / "checkpoints" / name)
    return _snapshot(out)


def test_a_resume_checkpoint_that_does_not_fit_leaves_the_folder_as_it_was(tiny_run, tiny_data, tmp_path) -> None:
    out = tmp_path / "used"
    before = _with_checkpoints(tiny_run, out)
    resume = out / "checkpoints" / "step_00000001.ckpt"
    with pytest.raises(CheckpointError, match=r"step_00000001\.ckpt was trained with depth=2 but this config builds"):
        pretrain(_cfg(tmp_path, tiny_data, out, f"checkpoint.resume={resume}", "ssl.student.overrides={depth: 3}"))
    assert _snapshot(out) == before


def test_a_refusal_after_the_resume_check_keeps_the_later_checkpoints(tiny_run, tiny_data, tmp_path, monkeypatch):
    """Resuming from step 1 abandons step 2 (moved into `abandoned-*`), but only once the start is accepted: a
    refusal after the resume checkpoint was checked (here a stand-in at the trainer) leaves step 2 where it was."""
    import geodino.train.module as module_lib

    def refuse(*args, **kwargs):
        raise ConfigError("trainer: refused for the test")

    monkeypatch.setattr(module_lib, "build_trainer", refuse)
    out = tmp_path / "used"
    before = _with_checkpoints(tiny_run, out)
    resume = out / "checkpoints" / "step_00000001.ckpt"
    with pytest.raises(ConfigError, match="refused for the test"):
        pretrain(_cfg(tmp_path, tiny_data, out, f"checkpoint.resume={resume}"))
    assert _snapshot(out) == before


def test_an_accepted_start_still_does_the_housekeeping(tiny_data, tmp_path, monkeypatch) -> None:
    """The deferred housekeeping runs once the start is accepted (before Lightning looks at the folder): the half-
    written checkpoint is gone, `hpc_ckpt_1.ckpt` moved aside, config.yaml rewritten, the note untouched."""
    import geodino.train.pretrain_fit as fit_lib

    seen: list[dict[str, bytes | None]] = []
    monkeypatch.setattr(fit_lib, "fit", lambda trainer, module, resume: seen.append(_snapshot(out)))
    monkeypatch.setattr(fit_lib, "finish_run", lambda *args: None)
    out = tmp_path / "used"
    _used_folder(out)
    pretrain(_cfg(tmp_path, tiny_data, out))
    (at_fit,) = seen
    assert "checkpoints/.step_00000003.ckpt.tmp-9" not in at_fit and "hpc_ckpt_1.ckpt" not in at_fit
    (aside,) = [k for k in at_fit if k.endswith("/hpc_ckpt_1.ckpt")]
    assert aside.startswith("checkpoints/ignored-") and at_fit[aside] == b"mid-step"
    assert at_fit["notes.txt"] == b"mine" and at_fit["config.yaml"] != b"name: earlier\n"


@pytest.mark.parametrize("kind", ["band count", "all nodata", "init_from unreadable", "resume file missing"])
def test_a_refused_start_leaves_no_folder_above_out(tiny_data, blank, tmp_path, kind) -> None:
    extra, error, line = _cases(tmp_path, blank)[kind]
    with pytest.raises(error) as err:
        pretrain(_cfg(tmp_path, tiny_data, tmp_path / "a" / "b" / "run", *extra))
    assert str(err.value).startswith(line)
    assert not (tmp_path / "a").exists(), sorted(str(p) for p in (tmp_path / "a").rglob("*"))
