"""How pretraining reads its data, from an adversarial audit: inputs that fed the model wrong pixels silently (band
names in another case, masks switched off, reprojected corners, rotated photos) and now read right or stop with
one line. Every fixture is generated here; values are checked against hand-computed ones."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.archive import RasterArchive
from geodino.data.sensors import Sensor
from geodino.errors import InputError

from .conftest import write_tif

# bands in R, G, B, N order; the statistics differ per band so a mix-up shows in the standardised values
RGBN = Sensor(
    "rgbn16",
    ("red", "green", "blue", "nir"),
    1e-4,
    (0.1, 0.2, 0.3, 0.4),
    (0.01, 0.02, 0.03, 0.04),
    False,
    nodata=None,
)


def _bands(values: tuple[int, ...], h: int = 16, w: int = 16, dtype: str = "uint16") -> np.ndarray:
    return np.stack([np.full((h, w), v, dtype=dtype) for v in values])


def test_band_descriptions_in_another_case_are_matched_by_name_not_position(tmp_path):
    """A PlanetScope-like file in B, G, R, N order whose descriptions are capitalised (Blue, Green, Red, NIR): the
    sensor's names are lower case. The exact-case check failed and the sensor was taken positionally, so the file's
    blue band was standardised with red's mean and std (and labelled red in the export record)."""
    p = write_tif(tmp_path / "bgrn.tif", _bands((1000, 2000, 3000, 4000)), descriptions=["Blue", "Green", "Red", "NIR"])
    archive = RasterArchive([p], sensor=RGBN, progress=False)
    assert archive.sensor.bands == ("blue", "green", "red", "nir")
    assert archive.sensor.mean == (0.3, 0.2, 0.1, 0.4)
    image = archive.sample(0, 0, 0, 4, 4)["image"]
    z = archive.sensor.standardize(image)[:, 0, 0]
    # blue: (0.1 - 0.3) / 0.03; green (0.2 - 0.2) / 0.02; red (0.3 - 0.1) / 0.01; nir (0.4 - 0.4) / 0.04
    np.testing.assert_allclose(z, [-0.2 / 0.03, 0.0, 20.0, 0.0], atol=1e-3)


def test_band_names_the_sensor_places_elsewhere_are_refused_not_read_by_position(tmp_path):
    """Some names known (Blue at file band 1 is the sensor's band 3), one not (Infrared): a positional read would
    feed blue as red; one line names the band and what to do."""
    p = write_tif(tmp_path / "bgri.tif", _bands((1, 2, 3, 4)), descriptions=["Blue", "Green", "Red", "Infrared"])
    with pytest.raises(InputError, match=r"bgri.tif name their bands .*file band 1 'Blue' is the sensor's 'blue' "):
        RasterArchive([p], sensor=RGBN, progress=False)
    # names the sensor does not know at all still read by position (the file's order is the sensor's)
    q = write_tif(tmp_path / "plain.tif", _bands((1, 2, 3, 4)), descriptions=["r", "g", "b", "n"])
    assert RasterArchive([q], sensor=RGBN, progress=False).sensor.bands == RGBN.bands
