"""A resumed `embed images` run redoes the parts made from files that changed since the kill: the file list was
recorded by name only, so an image replaced under its name kept the old image's vector in the output. Each part
records its files (size, modification time, sha256 of the first 64 KiB) and the folder's DN -> reflectance rules;
a resume redoes the parts whose files or rules differ, says so in one line, and writes the file an uninterrupted run
on the files as they are now writes. A part written before parts recorded their files is trusted as before."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from geodino.embed import file_stamps
from geodino.embed.pipeline import run_lines
from tests import helpers
from tests.embed.test_embed_images import SPEC, rgb, save_png
from tests.embed.test_embed_images_resume import (
    N_IMAGES,
    OPTIONS,
    assert_same_output,
    chips,
    killed_after,
    small_parts,  # noqa: F401  (parts of 2 images)
)


def warned(broken: bool):
    """`chips` holds a broken image: the run warns that it skips it."""
    return pytest.warns(UserWarning, match="skipped unreadable image") if broken else contextlib.nullcontext()


def kill_after_2_parts(root: Path, out: Path, backbone=SPEC, broken: bool = True, **options) -> Path:
    """Run into `out`, killed after its 2nd batch (= part): the work folder it leaves."""
    from geodino.embed import embed_images

    with killed_after(2), pytest.raises(RuntimeError, match="killed"), warned(broken):
        embed_images(root, backbone, out, **{**OPTIONS, **options})
    work = out.parent / f".{out.name}.partial"
    assert len(list(work.glob("part_*.parquet"))) == 2
    return work


def resume(root: Path, out: Path, capsys, backbone=SPEC, **options) -> tuple[int, str]:
    """Run again into `out` with the command's lines: (images through the model, stderr)."""
    from geodino.embed import embed_images

    capsys.readouterr()
    with killed_after(-1) as calls, run_lines():
        embed_images(root, backbone, out, **{**OPTIONS, **options})
    return calls["images"], capsys.readouterr().err


def fresh(root: Path, want: Path, backbone=SPEC, broken: bool = True, **options) -> Path:
    """An uninterrupted run on the files as they are now."""
    from geodino.embed import embed_images

    with warned(broken):
        return embed_images(root, backbone, want, **{**OPTIONS, **options})


def test_an_image_replaced_between_kill_and_resume_has_its_part_redone(tmp_path, capsys):
    root, out = chips(tmp_path), tmp_path / "o.parquet"
    kill_after_2_parts(root, out)
    save_png(root / "one/img00.png", rgb(seed=99))  # another image under the same name, in the first part
    with warned(True):  # one/img01.png, in the part redone
        images, err = resume(root, out, capsys)
    line = "geodino: 1 image changed since the partial run (one/img00.png); re-embedding 1 part (2 images)"
    assert line in err, err
    assert "resuming: 2 of 9 images embedded (" in err, err  # the 2nd part, kept
    assert images == 2 + N_IMAGES - 4  # the part redone (img00 and the broken img01's stand-in), then images 4..8
    assert_same_output(out, fresh(root, tmp_path / "want.parquet"))


def test_unchanged_files_redo_no_part(tmp_path, capsys):
    """Copied back onto themselves with `cp -p` (the same bytes and times): nothing to redo, nothing said."""
    root, out = chips(tmp_path), tmp_path / "o.parquet"
    kill_after_2_parts(root, out)
    for rel in ("one/img00.png", "one/img02.png"):
        shutil.copy2(root / rel, tmp_path / "x.png")
        shutil.copy2(tmp_path / "x.png", root / rel)
    images, err = resume(root, out, capsys)
    assert images == N_IMAGES - 4 and "since the partial run" not in err
    assert "resuming: 3 of 9 images embedded, 1 unreadable image skipped" in err, err
    assert_same_output(out, fresh(root, tmp_path / "want.parquet"))


@pytest.mark.parametrize("racy", [True, False], ids=["files just made: heads hashed", "older files: by stat"])
def test_a_replacement_with_the_old_files_size_and_time_is_redone(tmp_path, capsys, monkeypatch, racy):
    """`cp -p` of another image of the same size keeps the modification time: its change time moved, so its head is
    hashed, and its content tells it apart."""
    if not racy:  # as for a folder not written in the last 2 s: a file is trusted by its stat alone
        monkeypatch.setattr(file_stamps, "RACY_NS", 0)
    root, out = chips(tmp_path), tmp_path / "o.parquet"
    kill_after_2_parts(root, out)
    target = root / "one/img03.png"  # in the 2nd part
    other = save_png(tmp_path / "other.png", np.flip(rgb(seed=13), axis=2).copy())  # img03's pixels, mirrored
    assert other.stat().st_size == target.stat().st_size and other.read_bytes() != target.read_bytes()
    before = target.stat()
    shutil.copyfile(other, target)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    images, err = resume(root, out, capsys)
    assert "1 image changed since the partial run (one/img03.png); re-embedding 1 part (2 images)" in err, err
    assert images == 2 + N_IMAGES - 4
    assert_same_output(out, fresh(root, tmp_path / "want.parquet"))


def counted_hashes(monkeypatch) -> Counter:
    """How often each file's head is hashed from now on (by name under the chips folder)."""
    hashed: Counter = Counter()
    state = file_stamps.file_state
    monkeypatch.setattr(file_stamps, "file_state", lambda p: hashed.update([f"{p.parent.name}/{p.name}"]) or state(p))
    return hashed


@pytest.mark.parametrize("replace", ["copy", "rename"], ids=["same inode", "new inode"])
def test_a_resume_hashes_only_the_files_whose_stat_moved(tmp_path, capsys, monkeypatch, replace):
    """Before, every embedded file's first 64 KiB was hashed on every resume (1M images: 64 GB read). Now a file whose
    size, times and inode are as its part recorded is not read; one whose change time or inode alone moved is hashed:
    a `chmod` (the same bytes: kept) and another image put in with the old size and time, by a copy onto it (its
    change time moves) or a rename onto it (its inode moves): redone. The output is that of a fresh run."""
    monkeypatch.setattr(file_stamps, "RACY_NS", 0)
    root, out = chips(tmp_path), tmp_path / "o.parquet"
    kill_after_2_parts(root, out)  # parts one/img00-01 and one/img02-03
    (root / "one/img00.png").chmod(0o600)
    target = root / "one/img03.png"
    before = target.stat()
    other = save_png(tmp_path / "other.png", np.flip(rgb(seed=13), axis=2).copy())
    assert other.stat().st_size == before.st_size
    if replace == "copy":
        shutil.copyfile(other, target)
    else:
        os.replace(other, target)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (target.stat().st_ino != before.st_ino) == (replace == "rename")
    hashed = counted_hashes(monkeypatch)
    images, err = resume(root, out, capsys)
    assert "1 image changed since the partial run (one/img03.png); re-embedding 1 part (2 images)" in err, err
    assert images == 2 + N_IMAGES - 4
    # img00: checked (its change time moved); img01: not read; img02: taken again with its part; img03: checked and
    # taken again; the images not yet embedded: taken once each, before their pixels are read
    assert hashed == {"one/img00.png": 1, "one/img02.png": 1, "one/img03.png": 2, "one/img04.png": 1} | {
        f"two/img{k:02d}.png": 1 for k in range(5, N_IMAGES)
    }
    assert_same_output(out, fresh(root, tmp_path / "want.parquet"))


def test_a_part_that_records_no_change_times_has_its_files_hashed_as_before(tmp_path, capsys, monkeypatch):
    """A part written before parts recorded each file's change time and inode: every file of it is checked by its
    head, as then (a replacement with the old size and time is still caught), and none is trusted by stat."""
    monkeypatch.setattr(file_stamps, "RACY_NS", 0)
    root, out = chips(tmp_path), tmp_path / "o.parquet"
    work = kill_after_2_parts(root, out)
    edit_part_records(work, lambda meta: {k: v for k, v in meta.items() if k not in ("stamps", "taken_ns")})
    target = root / "one/img03.png"
    before = target.stat()
    shutil.copyfile(save_png(tmp_path / "other.png", np.flip(rgb(seed=13), axis=2).copy()), target)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    hashed = counted_hashes(monkeypatch)
    images, err = resume(root, out, capsys)
    assert "1 image changed since the partial run (one/img03.png); re-embedding 1 part (2 images)" in err, err
    assert images == 2 + N_IMAGES - 4
    assert hashed["one/img00.png"] == hashed["one/img01.png"] == 1  # part 1 kept, each file read by its head
    assert_same_output(out, fresh(root, tmp_path / "want.parquet"))


def edit_part_records(work: Path, edit) -> None:
    """Rewrite each part's metadata record with `edit(record)`."""
    import pyarrow.parquet as pq

    from geodino.embed.image_parts import PART_KEY

    for path in work.glob("part_*.parquet"):
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[PART_KEY])
        assert {"files", "settled", "stamps", "taken_ns"} <= set(meta)
        pq.write_table(table.replace_schema_metadata({PART_KEY: json.dumps(edit(meta)).encode()}), path)


def test_a_part_of_an_earlier_version_is_trusted_as_before(tmp_path, capsys):
    """Parts that record no files (written before they did) resume as they did: not redone, nothing said."""
    root, out = chips(tmp_path), tmp_path / "o.parquet"
    work = kill_after_2_parts(root, out)
    edit_part_records(work, lambda meta: {k: v for k, v in meta.items() if k not in ("files", "settled")})
    images, err = resume(root, out, capsys)
    assert images == N_IMAGES - 4 and "since the partial run" not in err
    assert_same_output(out, fresh(root, tmp_path / "want.parquet"))


def test_a_part_whose_record_of_its_files_is_damaged_is_redone(tmp_path, capsys):
    root, out = chips(tmp_path), tmp_path / "o.parquet"
    work = kill_after_2_parts(root, out)
    edit_part_records(work, lambda meta: meta | {"files": meta["files"][:1] if meta["lo"] else meta["files"]})
    images, err = resume(root, out, capsys)
    line = "geodino: 1 part of the partial run with a damaged record of its files; re-embedding 1 part (2 images)"
    assert line in err, err
    assert images == 2 + N_IMAGES - 4
    assert_same_output(out, fresh(root, tmp_path / "want.parquet"))


def test_a_replaced_image_that_changes_the_folders_rule_redoes_every_part(tmp_path, capsys):
    """A backbone recording 8-bit DN: 16-bit images all <= 255 get x/255; one image above 255 anywhere in the
    folder makes it x/10000 for all. Replaced in a part not yet made, it changes the vectors of the parts made."""
    from geodino.backbones import load_backbone

    eight = load_backbone("arch:vit_tiny?depth=1&patch_size=8&seed=0&bands=red,green,blue&sensor=maxar")
    root, out = tmp_path / "tifs", tmp_path / "o.parquet"
    root.mkdir()
    for k in range(6):
        helpers.write_tif(root / f"t{k}.tif", rgb(16, 16, seed=k, dtype=np.uint16, top=200), crs=None)
    opts = {"l2_normalize": False, "pool": "cls"}
    kill_after_2_parts(root, out, eight, broken=False, **opts)
    helpers.write_tif(root / "t5.tif", rgb(16, 16, seed=5, dtype=np.uint16, top=4000), crs=None)  # not yet embedded
    images, err = resume(root, out, capsys, eight, **opts)
    rule = "the folder's DN -> reflectance rule for uint16 images of 3 bands changed since the partial run"
    assert f"{rule} (then x*0.00392157" in err, err
    assert "now x/10000" in err and "re-embedding 2 parts (4 images)" in err, err
    assert images == 6
    assert_same_output(out, fresh(root, tmp_path / "want.parquet", eight, broken=False, **opts))


def test_file_state_tells_contents_and_times_apart(tmp_path):
    from geodino.embed.file_stamps import file_state

    path = tmp_path / "a.tif"
    data = bytes(range(256)) * 1024  # 256 KiB
    path.write_bytes(data)
    st = path.stat()
    state = file_state(path)
    assert state is not None and state.startswith(f"{len(data)} {st.st_mtime_ns} ")

    def rewrite(body: bytes, *, keep_time: bool) -> str | None:
        path.write_bytes(body)
        if keep_time:
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        else:
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        return file_state(path)

    assert rewrite(data, keep_time=True) == state  # the same bytes and time: the same file
    assert rewrite(b"x" + data[1:], keep_time=True) != state  # cp -p of another file: its head differs
    assert rewrite(data[:-1] + b"x", keep_time=False) != state  # an edit past 64 KiB: its time differs
    assert rewrite(data, keep_time=False) != state  # touched: redone (costs time, never a wrong row)
    path.unlink()
    assert file_state(path) is None


def test_recheck_reads_a_file_only_when_its_stamp_alone_moved(tmp_path, monkeypatch):
    """The rule of `file_stamps.recheck` on one file: stat as recorded, no read; another change time (a `chmod`),
    its head hashed, the same; an edit in place past the head, a change with no read (its modification time moved);
    a record without a stamp, its head hashed (as before stamps were kept); a file gone, a change."""
    import time

    monkeypatch.setattr(file_stamps, "RACY_NS", 0)
    path = tmp_path / "a.tif"
    path.write_bytes(bytes(range(256)) * 1024)  # 256 KiB
    taken = time.time_ns()
    state, *stamp = file_stamps.file_record(path)
    hashed = counted_hashes(monkeypatch)
    assert file_stamps.recheck(path, state, stamp, taken) == (True, None) and not hashed
    was = [stamp[0] - 1, stamp[1]]  # as recorded before a `chmod` (a change time cannot be set, so it is the record)
    same, now = file_stamps.recheck(path, state, was, taken)
    assert same and now == [state, *stamp] and hashed.total() == 1
    assert file_stamps.recheck(path, state, None, taken)[0] and hashed.total() == 2
    mtime = path.stat().st_mtime_ns
    with open(path, "r+b") as fh:
        fh.seek(200_000)
        fh.write(b"edited")
    os.utime(path, ns=(mtime, mtime + 1_000_000))  # as the write sets it, past the clock's tick
    assert file_stamps.recheck(path, state, stamp, taken) == (False, None) and hashed.total() == 2
    path.unlink()
    assert file_stamps.recheck(path, state, stamp, taken) == (False, None)


OLD_PHOTO_RULE = "x/10000 (by dtype: uint16; set --scale if wrong)"  # a 16-bit PNG's rule before a42321e, as recorded


@pytest.mark.parametrize("record", ["settled", "earlier version"])
def test_parts_made_by_an_older_rule_are_redone_not_mixed_in(tmp_path, capsys, record):
    """16-bit PNGs were read x/10000 as uint16 data (records as an a42321e^ run wrote them); now round(x/257)/255,
    a group of their own. The resume identity names no rule, so the parts of such a run resumed beside new ones and the
    output held vectors of both rules (its input_scaling naming both). Parts recording the folder's rules are
    redone (one line naming the groups then and now); parts of an earlier version, recording only the rules they
    met, are redone when this run applies none of those."""
    from tests.data.test_photo_16bit import png16

    root, out = tmp_path / "photos", tmp_path / "o.parquet"
    root.mkdir()
    for k in range(6):
        png16(root / f"p{k}.png", rgb(16, 16, seed=k, dtype=np.uint16, top=65535))
    work = kill_after_2_parts(root, out, broken=False)
    old = {"rules": [OLD_PHOTO_RULE], "settled": {"uint16 3": OLD_PHOTO_RULE}}
    if record == "settled":
        edit_part_records(work, lambda meta: meta | old)
    else:
        edit_part_records(
            work,
            lambda meta: {k: v for k, v in meta.items() if k not in ("files", "settled")} | {"rules": old["rules"]},
        )
    images, err = resume(root, out, capsys)
    assert images == 6 and "re-embedding 2 parts (4 images)" in err, err
    if record == "settled":
        assert (
            "the folder's DN -> reflectance rules changed since the partial run (then uint16 images of 3 bands: "
            "x/10000; now uint16 photo images of 3 bands: round(x/257), x/255: an image replaced anywhere in the "
            "folder, or a "
            "geodino that reads it by another rule)"
        ) in err, err
    else:
        assert "2 parts of the partial run, written by an earlier geodino, made by a DN -> reflectance rule" in err
    assert_same_output(out, fresh(root, tmp_path / "want.parquet", broken=False))


@pytest.mark.parametrize("record", ["settled", "earlier version"])
def test_parts_of_the_same_rule_in_other_words_resume(tmp_path, capsys, record):
    """A rule's text names where it came from besides its formula, in words that change between versions (a
    backbone record was 'backbone NAME', now 'the backbone' or 'in FILE'): parts whose rules read otherwise but
    compute the same (the same formula) resume; they were all redone, said as a rule change whose then and now
    were the same formula, or as made by a rule this run does not apply."""
    from tests.data.test_photo_16bit import png16

    root, out = tmp_path / "photos", tmp_path / "o.parquet"
    root.mkdir()
    for k in range(6):
        png16(root / f"p{k}.png", rgb(16, 16, seed=k, dtype=np.uint16, top=65535))
    work = kill_after_2_parts(root, out, broken=False)

    def reword(text: str) -> str:
        return text.split(" (", 1)[0] + " (as another geodino said it)"

    def edit(meta: dict) -> dict:
        meta = meta | {"rules": [reword(t) for t in meta["rules"]]}
        if record == "earlier version":
            return {k: v for k, v in meta.items() if k not in ("files", "settled")}
        return meta | {"settled": {k: reword(v) for k, v in meta["settled"].items()}}

    edit_part_records(work, edit)
    images, err = resume(root, out, capsys)
    assert images == 2 and "re-embedding" not in err, err
