"""Many scenes of different band counts in one run: the header check compares the bands each scene will be read by
(`--bands`, as numbers or names), not the files' full band counts, so a 6-band and a 3-band scene go together with
`--bands 1,2,3` (before, they were refused and the message itself told the user to pass --bands). A band a scene
lacks is one line naming that scene, before any scene is embedded."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.transform import from_origin

from geodino import cli
from tests import helpers
from tests.embed.conftest import random_image
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
RUN = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1"]
RGB = ["red", "green", "blue"]


def _scenes(root, names: bool = False):
    """a.tif: 3 bands; b.tif: 6 bands whose first 3 are an RGB image (beside a.tif, same CRS)."""
    root.mkdir()
    six = np.concatenate([random_image(32, 32, seed=2), random_image(32, 32, seed=3)])
    helpers.write_tif(
        root / "a.tif", random_image(32, 32, seed=1), transform=from_origin(500000, 4000000, 10, 10),
        descriptions=RGB if names else None,
    )  # fmt: skip
    helpers.write_tif(
        root / "b.tif", six, transform=from_origin(500320, 4000000, 10, 10),
        descriptions=[*RGB, "nir", "swir16", "swir22"] if names else None,
    )  # fmt: skip
    return root, six


def test_bands_read_are_compared_not_the_files_counts(tmp_path, capsys):
    root, six = _scenes(tmp_path / "scenes")
    out = tmp_path / "feats"
    code = cli.main(["embed", str(root), "-b", SPEC, "--bands", "1,2,3", "--out", str(out), *RUN])
    assert code == 0, capsys.readouterr().err
    assert (out / "a.tif").exists() and (out / "b.tif").exists() and (out / "mosaic.vrt").exists()
    # b.tif was read by its bands 1..3: its features are those of the 3-band image embedded on its own
    alone = helpers.write_tif(tmp_path / "b3.tif", six[:3], transform=from_origin(500320, 4000000, 10, 10))
    assert cli.main(["embed", str(alone), "-b", SPEC, "--out", str(tmp_path / "b3_f.tif"), *RUN]) == 0
    with rasterio.open(out / "b.tif") as got, rasterio.open(tmp_path / "b3_f.tif") as want:
        assert got.count == want.count
        np.testing.assert_allclose(got.read(), want.read(), rtol=1e-5, atol=1e-5)


def test_band_names_pick_the_same_bands_of_scenes_of_other_counts(tmp_path, capsys):
    root, _ = _scenes(tmp_path / "scenes", names=True)
    out = tmp_path / "feats"
    code = cli.main(["embed", str(root), "-b", SPEC, "--bands", "red,green,blue", "--out", str(out), *RUN])
    assert code == 0, capsys.readouterr().err
    assert (out / "mosaic.vrt").exists()
    # both scenes were read by their bands 1..3: the features of the same run given the numbers
    code = cli.main(["embed", str(root), "-b", SPEC, "--bands", "1,2,3", "--out", str(tmp_path / "num"), *RUN])
    assert code == 0, capsys.readouterr().err
    for name in ("a.tif", "b.tif"):
        with rasterio.open(out / name) as got, rasterio.open(tmp_path / "num" / name) as want:
            assert got.tags()["GEODINO_INPUT_BANDS"] == "[1, 2, 3]"
            np.testing.assert_array_equal(got.read(), want.read())


def test_without_bands_other_counts_are_still_refused(tmp_path, capsys):
    root, _ = _scenes(tmp_path / "scenes")
    one_line_exit_2(
        capsys, tmp_path, "embed", root, "-b", SPEC, "--out", tmp_path / "feats", *RUN,
        expect=("scenes of different band counts", "a.tif has 3 bands", "b.tif has 6"),
    )  # fmt: skip


def test_a_band_one_scene_lacks_is_refused_before_any_scene(tmp_path, capsys):
    root, _ = _scenes(tmp_path / "scenes")
    one_line_exit_2(
        capsys, tmp_path, "embed", root, "-b", SPEC, "--bands", "4,5,6", "--out", tmp_path / "feats", *RUN,
        expect=("include band 4", f"scene {root / 'a.tif'} has 3 bands", "1..3"),
    )  # fmt: skip
