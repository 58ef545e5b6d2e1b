"""`read_image` with an offset but no scale: scale 0 takes the file's declared scale/offset (else its dtype rule),
which silently replaced the caller's offset on a file that declares one. Now refused in one line; a scale with
it applies both, and the file's own rule still applies with neither."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geodino.errors import ConfigError
from geodino.eval.datasets import read_image
from tests.eval.test_declared_scaling import LANDSAT, by_hand, dn_of, tagged


@pytest.mark.parametrize("rule", [LANDSAT, None], ids=["declared", "dtype"])
def test_an_offset_without_a_scale_is_refused(tmp_path, rule):
    path = tagged(tmp_path / "a.tif", dn_of(0), rule)
    with pytest.raises(ConfigError, match=r"^image .*a\.tif: offset=-0\.1 given without a scale") as err:
        read_image(path, offset=-0.1)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"offset=\[0\.1, 0\.2, 0\.3\] given without a scale"):
        read_image(path, 0.0, np.array([0.1, 0.2, 0.3], np.float32).reshape(-1, 1, 1))


def test_a_scale_with_the_offset_applies_both_and_neither_takes_the_files_rule(tmp_path):
    dn = dn_of(1)
    path = tagged(tmp_path / "a.tif", dn, LANDSAT)
    x, _ = read_image(path, 1e-4, -0.1)
    torch.testing.assert_close(x, by_hand(dn, [1e-4], [-0.1]), rtol=0, atol=0)
    x, _ = read_image(path)
    torch.testing.assert_close(x, by_hand(dn, *LANDSAT), rtol=0, atol=0)
