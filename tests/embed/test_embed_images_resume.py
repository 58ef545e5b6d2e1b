"""`embed images` is resumable: a run killed part-way (an exception after k batches, or SIGKILL of a subprocess)
leaves its parts in `.OUT.partial/`; the same command again continues after them and writes the file an
uninterrupted run writes (same rows, same order, vectors bit-identical on CPU, skipped files still recorded); other
arguments are refused in one line naming what differs (`--overwrite` starts again). Numeric options given as text
from Python are read as the CLI reads them; bad values name the flag and the keyword.

Before the parts, a killed run wrote nothing: the same command started over (every image through the model again).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from geodino.embed.pipeline import run_lines
from tests.embed.test_embed_images import SPEC, cli, meta_of, one_error_line, rgb, save_png

N_IMAGES = 9
BROKEN = "one/img01.png"  # in the first part: skipped there, and still recorded after a resume


@pytest.fixture(autouse=True)
def small_parts(monkeypatch):
    """Parts of 2 images (one batch of 2): a kill after k batches leaves k parts."""
    try:
        from geodino.embed import image_parts
    except ImportError:  # the code before parts: nothing to set (its tests then fail on what they check)
        return
    monkeypatch.setattr(image_parts, "PART_IMAGES", 2)


def chips(tmp_path: Path) -> Path:
    """N_IMAGES PNGs in two sub-folders (one/img00..04, two/img05..08: sorted as numbered), img01 corrupt."""
    root = tmp_path / "chips"
    for k in range(N_IMAGES):
        rel = f"{'one' if k < 5 else 'two'}/img{k:02d}.png"
        if rel == BROKEN:
            (root / "one").mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(b"\x89PNG not really")
        else:
            save_png(root / rel, rgb(seed=10 + k))
    return root


@contextlib.contextmanager
def killed_after(batches: int):
    """Every FrozenBackbone's forward counted; the one after `batches` raises, as a kill would stop the run."""
    from geodino.backbones.frozen import FrozenBackbone

    calls = {"batches": 0, "images": 0}
    original = FrozenBackbone.features

    def features(self, x, *args, **kwargs):
        if calls["batches"] == batches:
            raise RuntimeError("killed")
        calls["batches"] += 1
        calls["images"] += int(x.shape[0])
        return original(self, x, *args, **kwargs)

    FrozenBackbone.features = features
    try:
        yield calls
    finally:
        FrozenBackbone.features = original


def table(out: Path):
    """(paths, [N, D] float32 vectors, other columns, geodino metadata) as written."""
    import pyarrow.parquet as pq

    t = pq.read_table(out)
    col = t.column("embedding").combine_chunks()
    vectors = col.flatten().to_numpy().reshape(len(col), col.type.list_size)
    rest = {k: t.column(k).to_pylist() for k in ("label", "width", "height", "bands", "geometry")}
    return t.column("path").to_pylist(), vectors, rest, meta_of(out)


def assert_same_output(got: Path, want: Path) -> None:
    p1, v1, r1, m1 = table(got)
    p2, v2, r2, m2 = table(want)
    assert p1 == p2 and r1 == r2 and m1 == m2
    assert v1.dtype == v2.dtype == np.float32
    np.testing.assert_array_equal(v1.view(np.uint32), v2.view(np.uint32))  # bit for bit


OPTIONS = {"pool": "cls+mean", "l2_normalize": True, "batch_size": 2, "progress": False}


def test_a_run_killed_after_3_parts_resumes_to_the_uninterrupted_output(tmp_path, capsys):
    from geodino.embed import embed_images

    root = chips(tmp_path)
    want = tmp_path / "want.parquet"
    with pytest.warns(UserWarning, match="skipped unreadable image"):
        embed_images(root, SPEC, want, **OPTIONS)
    out = tmp_path / "o.parquet"
    with killed_after(3), pytest.raises(RuntimeError, match="killed"), pytest.warns(UserWarning):
        embed_images(root, SPEC, out, **OPTIONS)
    work = tmp_path / ".o.parquet.partial"
    assert not out.exists() and len(list(work.glob("part_*.parquet"))) == 3
    capsys.readouterr()
    with killed_after(-1) as calls, run_lines():  # the command's lines, without the bar
        embed_images(root, SPEC, out, **OPTIONS)
    err = capsys.readouterr().err
    # 6 images done (one of them skipped as unreadable); only the other 3 run through the model
    assert "geodino: resuming: 5 of 9 images embedded, 1 unreadable image skipped" in err, err
    assert calls["images"] == N_IMAGES - 6
    assert_same_output(out, want)
    assert meta_of(out)["skipped"] == [BROKEN] and "1 unreadable image skipped" in err
    assert not work.exists() and not list(tmp_path.glob(".o*"))  # work folder, lock and temporaries gone


def test_a_run_killed_with_sigkill_resumes_through_the_cli(tmp_path, capsys):
    """A real kill (SIGKILL of a `geodino embed images` process while its 3rd batch runs), then the same command."""
    root = chips(tmp_path)
    want, out = tmp_path / "want.parquet", tmp_path / "o.parquet"
    args = ["embed", "images", str(root), "-b", SPEC, "--out", str(out), "--batch-size", "2", "--no-progress"]
    marker = tmp_path / "third_batch"
    script = f"""
import sys, time
from pathlib import Path
try:
    from geodino.embed import image_parts
    image_parts.PART_IMAGES = 2
except ImportError:
    pass
from geodino.backbones.frozen import FrozenBackbone
from geodino.cli import main
original, calls = FrozenBackbone.features, [0]
def features(self, x, *a, **k):
    calls[0] += 1
    if calls[0] == 3:
        Path({str(marker)!r}).write_text("x")
        time.sleep(600)
    return original(self, x, *a, **k)
FrozenBackbone.features = features
sys.exit(main({args!r}))
"""
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2], stderr=subprocess.PIPE)
    try:
        t0 = time.monotonic()
        while not marker.exists() and proc.poll() is None and time.monotonic() - t0 < 120:
            time.sleep(0.1)
        assert marker.exists(), proc.stderr.read().decode() if proc.poll() is not None else "timed out"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert not out.exists()
    with pytest.warns(UserWarning):
        assert cli(*args[:6], str(want), *args[7:]) == 0
    capsys.readouterr()
    with killed_after(-1) as calls:
        assert cli(*args) == 0
    assert "geodino: resuming: 3 of 9 images embedded, 1 unreadable image skipped" in capsys.readouterr().err
    assert calls["images"] == N_IMAGES - 4
    assert_same_output(out, want)


def test_a_damaged_last_part_is_redone(tmp_path, capsys):
    from geodino.embed import embed_images

    root = chips(tmp_path)
    want, out = tmp_path / "want.parquet", tmp_path / "o.parquet"
    with pytest.warns(UserWarning):
        embed_images(root, SPEC, want, **OPTIONS)
    with killed_after(3), pytest.raises(RuntimeError), pytest.warns(UserWarning):
        embed_images(root, SPEC, out, **OPTIONS)
    last = sorted((tmp_path / ".o.parquet.partial").glob("part_*.parquet"))[-1]
    last.write_bytes(last.read_bytes()[:100])  # cut short (a disk error, a copy interrupted)
    capsys.readouterr()
    with killed_after(-1) as calls, run_lines():  # the command's lines, without the bar
        embed_images(root, SPEC, out, **OPTIONS)
    assert "resuming: 3 of 9 images embedded, 1 unreadable image skipped" in capsys.readouterr().err
    assert calls["images"] == N_IMAGES - 4
    assert_same_output(out, want)


def killed_run(tmp_path: Path, **options) -> tuple[Path, Path, dict[str, bytes]]:
    """A run of `chips` into o.parquet killed after 2 parts: (root, out, the work folder's files)."""
    from geodino.embed import embed_images

    root = chips(tmp_path)
    out = tmp_path / "o.parquet"
    with killed_after(2), pytest.raises(RuntimeError), pytest.warns(UserWarning):
        embed_images(root, SPEC, out, **{**OPTIONS, **options})
    work = tmp_path / ".o.parquet.partial"
    return root, out, {p.name: p.read_bytes() for p in work.iterdir()}


@pytest.mark.parametrize(
    ("change", "differs"),
    [
        ({"pool": "mean"}, "pool cls+mean (this run: mean)"),
        ({"image_size": 16}, "image_size 0 (this run: 16)"),
        ({"l2_normalize": False}, "l2_normalize true (this run: false)"),
        ({"layers": "0"}, None),  # the same block (depth 1): the same run
        ({"backbone": "arch:vit_tiny?depth=1&patch_size=8&seed=1"}, "backbone arch:vit_tiny?depth=1&patch_size=8"),
        ({"scale": 2e-3}, "sensor/scale 0.0 (this run: 0.002)"),
    ],
)
def test_a_rerun_with_other_arguments_is_refused_naming_what_differs(tmp_path, change, differs):
    from geodino.embed import embed_images
    from geodino.errors import InputError

    root, out, before = killed_run(tmp_path)
    work = tmp_path / ".o.parquet.partial"
    options = {**OPTIONS, **change}
    backbone = options.pop("backbone", SPEC)
    if differs is None:
        embed_images(root, backbone, out, **options)
        assert out.exists() and not work.exists()
        return
    with pytest.raises(InputError, match="was started with other settings: ") as exc:
        embed_images(root, backbone, out, **options)
    line = str(exc.value)
    assert "\n" not in line and differs in line, line
    assert "pass --overwrite to start again (overwrite=True in Python)" in line
    assert {p.name: p.read_bytes() for p in work.iterdir()} == before and not out.exists()
    # --overwrite starts again: the file a fresh run with these arguments writes
    with pytest.warns(UserWarning):
        embed_images(root, backbone, out, **options, overwrite=True)
    with pytest.warns(UserWarning):
        embed_images(root, backbone, tmp_path / "fresh.parquet", **options)
    assert_same_output(out, tmp_path / "fresh.parquet")
    assert not work.exists()


def test_another_file_list_is_refused_through_the_cli_in_one_line(tmp_path, capsys):
    root, out, before = killed_run(tmp_path)
    save_png(root / "two" / "z99.png", rgb(seed=99))
    args = ("embed", "images", str(root), "-b", SPEC, "--out", str(out), "--pool", "cls+mean", "--l2", "true")
    assert cli(*args, "--batch-size", "2", "--no-progress") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "images 9 files, sha256 " in line and "(this run: 10 files, sha256 " in line, line
    assert f"{tmp_path / '.o.parquet.partial'} was started with other settings" in line and "--overwrite" in line
    assert sorted(p.name for p in (tmp_path / ".o.parquet.partial").iterdir()) == sorted(before)


def test_stop_on_error_refuses_to_finish_a_run_that_skipped_files(tmp_path):
    """A run with --on-error skip left a part without the broken file; finishing it with --on-error stop would
    write a file a stop run never writes: one line, both ways out. --on-error skip finishes it."""
    from geodino.embed import embed_images
    from geodino.errors import InputError

    root, out, _ = killed_run(tmp_path)
    with pytest.raises(InputError, match=r"skipped 1 unreadable image \(e\.g\. one/img01\.png.*--on-error skip"):
        embed_images(root, SPEC, out, **OPTIONS, on_error="stop")
    embed_images(root, SPEC, out, **OPTIONS, on_error="skip")
    assert meta_of(out)["skipped"] == [BROKEN]


def test_a_user_error_part_way_removes_the_work_folder_it_started(tmp_path):
    """--on-error stop at a broken file in the 3rd part: nothing to resume (a rerun stops there again), so the run
    that started the work folder removes it, as before the parts."""
    from geodino.embed import embed_images
    from geodino.errors import InputError

    root = chips(tmp_path)
    (root / BROKEN).unlink()
    (root / "two" / "img07.png").write_bytes(b"not a png")  # the 7th image of 8: in the 4th part
    with pytest.raises(InputError, match=r"cannot read image .*img07\.png"):
        embed_images(root, SPEC, tmp_path / "o.parquet", **OPTIONS, on_error="stop")
    assert not list(tmp_path.glob(".o*")) and not (tmp_path / "o.parquet").exists()


def test_a_second_run_into_the_same_output_is_refused_while_one_writes(tmp_path):
    import fcntl

    from geodino.embed import embed_images
    from geodino.errors import InputError
    from geodino.run_lock import output_lock_path

    root = chips(tmp_path)
    out = tmp_path / "o.parquet"
    lock = output_lock_path(out)
    with open(lock, "w") as other:
        other.write("pid 4242")
        other.flush()
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InputError, match=r"output .*o\.parquet is being written by another run"):
            embed_images(root, SPEC, out, **OPTIONS)
    lock.unlink()
    assert not out.exists() and not (tmp_path / ".o.parquet.partial").exists()


# ------------------------------------------------------------------------------ numeric text, bad values


def test_numeric_options_as_text_are_read_as_the_cli_reads_them(tmp_path):
    from geodino.embed import embed_images

    root = tmp_path / "d"
    for k in range(3):
        save_png(root / f"{k}.png", rgb(seed=k))
    want = embed_images(root, SPEC, tmp_path / "want.parquet", batch_size=2, image_size=16, scale=2e-3, progress=False)
    got = embed_images(
        root, SPEC, tmp_path / "got.parquet", batch_size="2", image_size=" 16 ", scale="2e-3", progress=False
    )
    assert_same_output(got, want)
    got = embed_images(root, SPEC, tmp_path / "f.parquet", batch_size=2.0, image_size=16.0, scale=2e-3, progress=False)
    assert_same_output(got, want)
    # flags given as text: "false" is False (bool("false") is True: l2_normalize="false" normalised the vectors)
    got = embed_images(root, SPEC, tmp_path / "b.parquet", batch_size=2, image_size=16, scale=2e-3,
                       l2_normalize="false", progress="no")  # fmt: skip
    assert_same_output(got, want)
    l2 = embed_images(root, SPEC, tmp_path / "l2.parquet", batch_size=2, image_size=16, scale=2e-3,
                      l2_normalize="true", progress=0)  # fmt: skip
    assert l2.read_bytes() != want.read_bytes()


@pytest.mark.parametrize(
    ("option", "value", "flag"),
    [
        ("batch_size", "sixteen", "--batch-size"),
        ("batch_size", 0, "--batch-size"),
        ("batch_size", "2.5", "--batch-size"),
        ("batch_size", True, "--batch-size"),
        ("image_size", "224px", "--image-size"),
        ("image_size", -8, "--image-size"),
        ("image_size", "12", "--image-size"),  # not a multiple of the patch size 8
        ("pool", "max", "--pool"),
        ("pool", ["cls"], "--pool"),
        ("on_error", "ignore", "--on-error"),
        ("scale", "1e-4x", "--scale"),
        ("scale", float("nan"), "--scale"),
        ("l2_normalize", "maybe", "--l2"),
        ("overwrite", 2, "--overwrite"),
        ("amp", "bf16", "--bf16"),
    ],
)
def test_bad_values_are_one_line_naming_the_flag_and_the_keyword(tmp_path, option, value, flag):
    from geodino.embed import embed_images
    from geodino.errors import GeoDinoError

    root = tmp_path / "d"
    save_png(root / "a.png", rgb())
    out = tmp_path / "o.parquet"
    with pytest.raises(GeoDinoError) as exc:
        embed_images(root, SPEC, out, **{option: value}, progress=False)
    line = str(exc.value)
    assert "\n" not in line and flag in line and f"{option}=" in line, line
    assert not out.exists() and not list(tmp_path.glob(".o*"))


def test_the_identity_record_names_the_run(tmp_path):
    """What plan.json holds is what a rerun is checked against (the brief's list, plus what else changes vectors)."""
    _, _, files = killed_run(tmp_path, bands=[1, 2, 3])
    record = json.loads(files["plan.json"])
    want = {"backbone", "fingerprint", "pool", "layers", "image_size", "l2_normalize", "bands", "scale", "offset"}
    assert want | {"images", "input", "mean/std", "inference_path"} <= set(record)
    assert record["bands"] == [1, 2, 3] and record["images"].startswith("9 files, sha256 ")
