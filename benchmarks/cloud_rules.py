"""The cloud screen of `geodino data curate` on real chips: what each rule drops (../shared/data).

1. EuroSAT RGB (eurosat_3000, cloud-free 8-bit chips, read as the curation pipeline reads them: `imagenet`
   sensor, DN/255): tiles whose cloud-like share exceeds --max-cloud (0.5) under the `bright` rule (every RGB band
   >= 0.5) and the `rgb` rule (bright + white + smooth), per class.
2. Generated clouds: every 10th chip overlaid with a cloud field (fractal noise, opaque inside, soft edges,
   shaded 0.65..1.0, saved as JPEG q=90 like the archive) at opaque covers of 100, 80, 70 and 60 %, and fully white
   tiles; the share of those tiles each rule drops.

    .venv/bin/python benchmarks/cloud_rules.py
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from bench_cli import Parser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHIPS = ROOT.parent / "shared" / "data" / "eurosat_3000"


def _read(data: bytes, sensor) -> np.ndarray:
    from geodino.data.images import decode_image

    return sensor.to_reflectance(decode_image(data, "x.jpg")).astype(np.float32)


def _clouded(x: np.ndarray, cover: float, rng: np.random.Generator) -> bytes:
    """A chip under a generated cloud whose opaque part covers `cover` of it, as JPEG bytes."""
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    h, w = x.shape[1:]
    noise = sum(gaussian_filter(rng.normal(size=(h, w)), s) * s for s in (2, 4, 8, 16))
    noise = (noise - noise.mean()) / noise.std()
    alpha = np.ones((h, w)) if cover >= 1 else np.clip((noise - np.quantile(noise, 1 - cover)) / 0.2 + 1, 0, 1)
    shade = np.clip(0.85 + 0.8 * gaussian_filter(rng.normal(size=(h, w)), 6), 0.65, 1.0)
    y = (1 - alpha) * x + alpha * shade[None]
    buf = io.BytesIO()
    Image.fromarray((np.clip(y, 0, 1).transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def main() -> int:
    import argparse

    Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    if not CHIPS.exists():
        print(f"skipped: {CHIPS} is absent")
        return 0
    from geodino.data.curate.clouds import cloud_rule
    from geodino.data.sensors import get_sensor

    sensor = get_sensor("imagenet")
    rules = {k: cloud_rule(sensor, k, 0.5) for k in ("bright", "rgb")}
    max_cloud = 0.5
    files = sorted(CHIPS.glob("*/*.jpg"))
    print("| class | chips | dropped by `bright` | dropped by `rgb` | largest `rgb` share |")
    print("|---|---|---|---|---|")
    for cls in sorted({f.parent.name for f in files}):
        shares = {k: [] for k in rules}
        members = [f for f in files if f.parent.name == cls]
        for f in members:
            x = _read(f.read_bytes(), sensor)
            valid = np.ones(x.shape[1:], bool)
            for k, r in rules.items():
                shares[k].append(r.share(x, valid))
        b, g = np.asarray(shares["bright"]), np.asarray(shares["rgb"])
        print(f"| {cls} | {len(members)} | {(b > max_cloud).sum()} | {(g > max_cloud).sum()} | {g.max():.2f} |")
    rng = np.random.default_rng(0)
    sample = files[::10]
    print()
    print("| generated cloud tiles | tiles | dropped by `bright` | dropped by `rgb` |")
    print("|---|---|---|---|")
    for cover in (1.0, 0.8, 0.7, 0.6):
        dropped = {k: 0 for k in rules}
        for f in sample:
            y = _read(_clouded(_read(f.read_bytes(), sensor), cover, rng), sensor)
            for k, r in rules.items():
                dropped[k] += r.share(y, np.ones(y.shape[1:], bool)) > max_cloud
        print(
            f"| chip under an opaque cloud over {cover:.0%} | {len(sample)} | {dropped['bright']} | {dropped['rgb']} |"
        )
    white = np.full((3, 64, 64), 250 / 255, np.float32)
    ok = {k: r.share(white, np.ones((64, 64), bool)) > max_cloud for k, r in rules.items()}
    print(f"| uniform white tile (DN 250) | 1 | {int(ok['bright'])} | {int(ok['rgb'])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
