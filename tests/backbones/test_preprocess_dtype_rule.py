"""`FrozenBackbone.preprocess` follows the one dtype rule (`geodino.data.dtype_rule`), as `geodino embed` and the
probes do: int8, int32 and uint32 batches were divided by 10000 (int8 codes to within +-0.0128, silently); now
they are refused in one line naming the ways to give a scale, unless the backbone's recorded DN scale applies
(32-bit integers, never int8 codes); uint8, uint16, int16 and float batches keep their values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geodino.backbones import load_backbone
from geodino.errors import InputError

PLAIN = "arch:vit_tiny?depth=1&patch_size=8&seed=0"
S2 = "arch:vit_tiny?depth=1&patch_size=8&seed=0&bands=B04,B03,B02&sensor=sentinel2_l2a"  # records x * 1e-4
SCALE = 2e-5


def batch(dtype: str) -> torch.Tensor:
    lo, hi = {"int8": (-100, 100), "int32": (-70000, 70000), "uint32": (0, 200000)}.get(dtype, (0, 250))
    return torch.from_numpy(np.random.default_rng(0).integers(lo, hi, (1, 3, 16, 16)).astype(dtype))


@pytest.fixture(scope="module")
def plain():
    return load_backbone(PLAIN)


@pytest.mark.parametrize("dtype", ["int8", "int32", "uint32"])
@pytest.mark.parametrize("rule", ["auto", "dtype"])
def test_types_without_a_default_are_refused_and_read_as_scaled_floats(plain, dtype, rule):
    x = batch(dtype)
    with pytest.raises(InputError, match=rf"^preprocess's input is {dtype}: .*preprocess\(x\.float\(\) \* FACTOR\)"):
        plain.preprocess(x, rule=rule)
    refl = x.float() * SCALE
    torch.testing.assert_close(plain.preprocess(refl, rule=rule), plain.normalize(refl), rtol=0, atol=0)


@pytest.mark.parametrize(("dtype", "divisor"), [("uint8", 255.0), ("uint16", 10000.0), ("int16", 10000.0)])
def test_types_with_a_default_keep_their_values(plain, dtype, divisor):
    x = batch(dtype)
    want = plain.normalize(x.float() / divisor)
    torch.testing.assert_close(plain.preprocess(x), want, rtol=0, atol=0)
    torch.testing.assert_close(plain.preprocess(x, rule="dtype"), want, rtol=0, atol=0)
    refl = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(plain.preprocess(refl), plain.normalize(refl), rtol=0, atol=0)


def test_a_recorded_dn_scale_reads_int32_but_not_int8_codes_unless_asked():
    s2 = load_backbone(S2)
    x = batch("int32")
    torch.testing.assert_close(s2.preprocess(x), s2.normalize(x.float() * torch.tensor(1e-4)), rtol=0, atol=0)
    codes = batch("int8")
    with pytest.raises(InputError, match=r"^preprocess's input is int8: .*or preprocess\(x, rule='record'\)"):
        s2.preprocess(codes)
    torch.testing.assert_close(  # asked for by name: the record applies to int8 too
        s2.preprocess(codes, rule="record"), s2.normalize(codes.float() * torch.tensor(1e-4)), rtol=0, atol=0
    )
