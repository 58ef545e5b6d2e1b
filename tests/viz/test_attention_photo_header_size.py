"""`viz attention` refuses a photo over its 4096x4096 px limit from the image header (Pillow opens lazily), before
decoding it: an 8000x8000 px 1-bit PNG (8 kB on disk) was decoded whole (9 s, 192 MB of RGB) and only then
refused. A --window over the limit is refused before decoding too; the message is the one it was."""

from __future__ import annotations

import pytest
from PIL import Image

from geodino.errors import InputError


def _no_decode(monkeypatch):
    import geodino.data.images as images

    def decode(*a, **k):
        raise AssertionError("the image was decoded before its size was checked")

    monkeypatch.setattr(images, "decode_photo", decode)


def test_a_photo_too_large_is_refused_from_its_header(tmp_path, monkeypatch):
    from geodino.viz.attention_input import read_input

    path = tmp_path / "huge.png"
    Image.new("1", (4200, 4100)).save(path)  # 17.2 Mpx > 4096 x 4096, a few kB
    _no_decode(monkeypatch)
    with pytest.raises(InputError, match=r"image .*huge\.png is 4200x4100 px; .* --window COL ROW WIDTH HEIGHT"):
        read_input(path)
    with pytest.raises(InputError, match=r"is 4097x4096 px"):
        read_input(path, window=[0, 0, 4097, 4096])


def test_a_photo_within_the_limit_is_still_read(tmp_path):
    from geodino.viz.attention_input import read_input

    path = tmp_path / "small.png"
    Image.new("RGB", (40, 24), (10, 20, 30)).save(path)
    sample = read_input(path)
    assert sample["image"].shape == (3, 24, 40)
    assert read_input(path, window=[4, 2, 16, 8])["image"].shape == (3, 8, 16)


def test_a_window_of_negative_size_is_named_as_outside_not_too_large(tmp_path):
    from geodino.viz.attention_input import read_input

    path = tmp_path / "small.png"
    Image.new("RGB", (40, 24)).save(path)
    said = r"^--window 0 0 -5000 -5000 \(col row width height\) is not inside .*\(window= in Python\)$"
    with pytest.raises(InputError, match=said):
        read_input(path, window=[0, 0, -5000, -5000])
