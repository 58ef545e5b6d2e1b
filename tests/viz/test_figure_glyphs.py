"""A figure titled with a file's Chinese or emoji name (`embed similar --out 北京.tif`, its PNG titled 北京.tif)
warned "Glyph 21271 (...) missing from font(s) DejaVu Sans." once per character, twice, of a product written as
asked: no such line now, from either figure writer."""

from __future__ import annotations

import warnings

from geodino.embed.quicklook import save_png
from geodino.viz.figures import figures, save_figure


def test_a_title_of_glyphs_the_font_lacks_warns_nothing(tmp_path) -> None:
    for write in (save_png, save_figure):
        fig, ax = figures().subplots(figsize=(2, 2))
        ax.set_title("-sim 北京 😀.tif")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            png = write(fig, tmp_path / f"{write.__name__}.png")
        assert png.stat().st_size > 0
        assert not [w for w in caught if "Glyph" in str(w.message)], [str(w.message) for w in caught]
