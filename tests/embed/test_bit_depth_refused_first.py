"""uint8 input through a backbone whose recorded sensor scales 16-bit DN is refused in ONE line: the warning that
the same DN scale cannot reach the recorded means came first (two lines for one problem); the refusal now runs
before the unit warnings."""

from __future__ import annotations

import re
import warnings

from tests.embed.conftest import random_image, write_tif
from tests.test_bad_inputs import one_line_exit_2


def test_uint8_with_a_16_bit_record_is_one_line(tmp_path, capsys):
    import torch

    from geodino.models import build_model
    from geodino.models.checkpoints import save_backbone

    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=3, depth=1)
    rec = {"bands": ["BLUE", "GREEN", "RED"], "mean": [0.1, 0.12, 0.15], "std": [0.05, 0.06, 0.08]}
    bb = save_backbone(model, tmp_path / "bb.safetensors", normalization={**rec, "sensor": "s2like", "scale": 1e-4})
    u8 = write_tif(tmp_path / "u8.tif", random_image(32, 32))
    argv = ("embed", u8, "-b", bb, "--out", tmp_path / "f.tif", "--tile", "32", "--overlap", "0", "--no-progress")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        line = one_line_exit_2(capsys, tmp_path, *argv)
    assert not [str(w.message) for w in seen if "16-bit" in str(w.message) or "means are larger" in str(w.message)]
    assert re.search(r"u8\.tif is uint8 but sensor 's2like' scales 16-bit DN", line), line
