"""benchmarks/curate_evidence.py on a backbone that embeds the chips alike (as a random-init one does): one line
and exit code 2, not a traceback (the benchmark needs a pretrained teacher, which its docstring says)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def test_curate_evidence_on_a_backbone_that_sees_every_chip_alike_is_one_line(tmp_path):
    """With --backbone arch:... (random init) nearly every EuroSAT chip is a near-duplicate of another, the curation
    refused --size 1500 and the benchmark ended in an InputError traceback (exit 1)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    chips = tmp_path / "data" / "eurosat_3000"
    for i in range(1300):  # 1300 chips + 300 planted copies: more tiles than the benchmark's --size 1500
        folder = chips / ("Forest", "River")[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        img = np.full((16, 16, 3), 120, np.uint8) + rng.integers(0, 3, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(img).save(folder / f"c{i:04d}.jpg", quality=95)
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "curate_evidence.py"),
            "--backbone",
            "arch:vit_tiny?patch_size=8&depth=1&seed=0",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        env={**os.environ, "GEODINO_SAMPLE_DATA": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2, p.stderr[-3000:]
    assert "Traceback" not in p.stderr and len(lines) == 1, p.stderr[-3000:]
    assert lines[0].startswith("curate_evidence: error: --backbone arch:vit_tiny?patch_size=8&depth=1&seed=0 embeds ")
    assert "of the 1600 chips within cosine 0.95 of another one" in lines[0]
    assert "pass a pretrained teacher, e.g. --backbone runs/x/export/teacher.pth" in lines[0]
