"""Web-image folders as they come: many unreadable files, hidden macOS files, files that are no images, odd photo
kinds. A long run on a folder half of whose files do not decode stopped at random ("10 images in a row failed to
decode"); a macOS `._x.jpg` beside each photo was an image to pretraining (a warning each) and stopped the probe,
while `embed images` left it out; a skipped file was said as a bare error type. Each image kind reads the same
pixels in pretraining, the probes and `embed images`."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from geodino.data.images import ImageFolderSource
from geodino.errors import InputError

HTML = b"<html><body>404 Not Found</body></html>\n"
APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(48)


def _png(path, value: int) -> None:
    Image.fromarray(np.full((6, 8, 3), value, dtype=np.uint8)).save(path)


def test_a_folder_mostly_of_unreadable_files_trains_on_its_readable_images(tmp_path) -> None:
    for i in range(4):
        _png(tmp_path / f"a{i}.png", 10 * i)
    for i in range(12):  # three of four files are error pages saved as .jpg
        (tmp_path / f"b{i:02d}.jpg").write_bytes(HTML)
    src = ImageFolderSource(tmp_path, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert src.get(0, 0)["path"].endswith("a0.png")  # image 0 decodes: the data is not broken as a whole
        paths = {src.get(i, seed)["path"] for seed in range(3) for i in range(100)}  # old code: stopped in ~20
    assert {p.rsplit("/", 1)[1] for p in paths} == {f"a{i}.png" for i in range(4)}
    assert len(src.bad) == 12  # each unreadable file decoded once, then redrawn without a new decode


def test_a_folder_where_no_file_decodes_stops_in_one_line(tmp_path) -> None:
    for i in range(3):
        (tmp_path / f"p{i}.jpg").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")  # LFS pointers
    src = ImageFolderSource(tmp_path, shuffle=False)
    with warnings.catch_warnings(), pytest.raises(InputError, match=r"all 3 images of source 'images' failed to"):
        warnings.simplefilter("ignore")
        src.get(0, 0)


def test_a_skipped_or_refused_file_says_what_it_is(tmp_path) -> None:
    from geodino.eval.datasets import read_array

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "page.jpg").write_bytes(HTML)
    says = {"cut.jpg": "truncated", "empty.jpg": "an empty file: 0 bytes", "page.jpg": "starts with b'<html><body>"}
    src = ImageFolderSource(tmp_path, shuffle=False, on_error="stop")
    for i, name in enumerate(src.files):
        with pytest.raises(InputError) as caught:
            src.get(i, 0)
        line = str(caught.value)
        assert line.startswith(f"image {name} cannot be decoded (") and "\n" not in line
        assert says[name.rsplit("/", 1)[1]] in line, line
        with pytest.raises(InputError) as caught:  # the probes and `embed images` say it as pretraining does
            read_array(name, rgb=True)
        line = str(caught.value)
        assert line.startswith(f"cannot read image {name}: ") and says[name.rsplit("/", 1)[1]] in line, line


def test_hidden_files_and_folders_are_no_images_to_any_command(tmp_path) -> None:
    from geodino.embed.images import list_images
    from geodino.eval.datasets import DatasetConfig, build_dataset

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            _png(tmp_path / cls / f"{i}.png", 40 * i)
            (tmp_path / cls / f"._{i}.png").write_bytes(APPLE_DOUBLE)  # macOS metadata beside each photo
    (tmp_path / "__MACOSX" / "a").mkdir(parents=True)  # a zip made on a Mac, unzipped
    (tmp_path / "__MACOSX" / "a" / "._0.png").write_bytes(APPLE_DOUBLE)
    (tmp_path / "a" / ".thumbs").mkdir()
    _png(tmp_path / "a" / ".thumbs" / "0.png", 0)
    want = [f"{c}/{i}.png" for c in ("a", "b") for i in range(3)]
    src = ImageFolderSource(tmp_path, shuffle=False)
    assert [f[len(str(tmp_path)) + 1 :] for f in src.files] == want
    assert list_images(tmp_path) == want
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # __MACOSX is said as a class folder without images
        ds = build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path), val_fraction=0.34), "train")
    assert ds.classes == ["a", "b"]
    assert sorted(f[len(str(tmp_path)) + 1 :] for f in ds.files) == want


def test_each_photo_kind_reads_the_same_pixels_in_pretraining_and_the_probes(tmp_path) -> None:
    from geodino.eval.datasets import read_array

    rgb = np.random.default_rng(1).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    im = Image.fromarray(rgb)
    sideways = Image.Exif()
    sideways[0x0112] = 6  # stored turned: upright when turned by 270 degrees
    im.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    im.save(tmp_path / "phone.jpg", exif=sideways.tobytes(), quality=95)
    im.save(tmp_path / "upper.JPG", quality=95)
    im.save(tmp_path / "prog.jpeg", progressive=True, quality=95)
    im.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(tmp_path / "palette.png")
    im.convert("L").save(tmp_path / "grey.png")
    im.convert("RGBA").save(tmp_path / "rgba.png")
    im.save(tmp_path / "photo.webp", lossless=True)
    im.save(tmp_path / "photo.bmp")
    src = ImageFolderSource(tmp_path, shuffle=False, on_error="stop")
    assert len(src) == 9
    for i, name in enumerate(src.files):
        pre = src.get(i, 0)["image"]
        probe = read_array(name, rgb=True)
        assert pre.shape == probe.shape == ((3, 16, 12) if name.endswith("phone.jpg") else (3, 12, 16)), name
        np.testing.assert_allclose(pre, probe.astype(np.float32) / 255, atol=1e-6, err_msg=name)


def test_without_replacement_a_corrupt_image_is_said_left_out(tmp_path) -> None:
    _png(tmp_path / "a.png", 9)
    (tmp_path / "b.jpg").write_bytes(HTML)
    src = ImageFolderSource(tmp_path, shuffle=False)
    src.max_tries, src.replace = 1, False  # as `data stats` reads each image once
    assert src.get(0, 0)["path"].endswith("a.png")
    with pytest.warns(UserWarning, match=r"b\.jpg .*then left out\)"), pytest.raises(InputError, match=r"b\.jpg"):
        src.get(1, 0)  # said "then replaced by another image at every read", which `data stats` never does


def test_a_training_process_names_the_first_corrupt_images_then_counts_them(tmp_path, monkeypatch) -> None:
    import geodino.data.images as images

    monkeypatch.setattr(images, "_skipped_count", 0)  # a fresh process
    _png(tmp_path / "a.png", 9)
    for i in range(images.NAMED + 10):  # a scraped folder: error pages saved as .jpg
        (tmp_path / f"b{i:02d}.jpg").write_bytes(HTML)
    src = ImageFolderSource(tmp_path, shuffle=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(len(src)):
            src.get(i, 0)
    said = [str(w.message) for w in caught if "corrupt image" in str(w.message)]
    assert len(src.bad) == images.NAMED + 10  # every one skipped
    assert len(said) == images.NAMED + 1, said[-2:]  # one line each before: a flood in a long run
    assert all(line.startswith("skipped corrupt image ") for line in said[:-1])
    assert said[-1].startswith(f"{images.NAMED + 1} corrupt images skipped so far") and "data stats" in said[-1]
