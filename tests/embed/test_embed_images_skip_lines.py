"""`embed images` on a scraped folder (error pages saved as .jpg beside the photos) names the first unreadable files
skipped, then counts them at every power of ten, as pretraining says corrupt images (`images.NAMED`): it said one
line per file, a flood for thousands. The output still lists every file skipped."""

from __future__ import annotations

import warnings
from pathlib import Path

from geodino.data.images import NAMED
from geodino.embed.images import embed_images
from tests.embed.test_embed_images import SPEC, meta_of, rgb, save_png

BAD = 100 + 5  # past the count line at NAMED + 1 and the one at 100


def test_a_folder_of_many_unreadable_files_names_the_first_then_counts(tmp_path: Path) -> None:
    from geodino.backbones import load_backbone

    root = tmp_path / "scraped"
    root.mkdir()
    for i in range(2):
        save_png(root / f"photo{i}.png", rgb(seed=i))
    for i in range(BAD):
        (root / f"page{i:03d}.jpg").write_bytes(b"<html><body>404 Not Found</body></html>\n")
    bb = load_backbone(SPEC)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = embed_images(root, bb, tmp_path / "o.parquet", progress=False)
    said = [str(w.message) for w in caught if "unreadable image" in str(w.message)]
    named = [line for line in said if line.startswith("skipped unreadable image ")]
    counted = [line for line in said if not line.startswith("skipped unreadable image ")]
    assert len(named) == NAMED and all("page" in line for line in named)  # one line per file before: 105
    assert [line.split(" ", 1)[0] for line in counted] == [str(NAMED + 1), "100"], counted
    assert "the output lists every one" in counted[0] and "\n" not in counted[0]
    meta = meta_of(out)
    assert len(meta["skipped"]) == BAD and meta["n_images"] == 2  # every file skipped is still recorded
