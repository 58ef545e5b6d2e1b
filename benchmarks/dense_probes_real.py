"""Real-data check of the dense probes on the shared NEON samples (skips when ../shared/data is absent).

Canopy height: DPT probe on SJER_052.tif with SJER_052_CHM.tif (1 m CHM on a grid offset by 0.4 m, co-registered
by bounds), a quarter of the 128 px tiles held out. Detection: Faster R-CNN on a ViTDet pyramid on OSBS_029.tif
with its 61 crown boxes, a quarter of the 208 px tiles held out. The default backbone is a *random* ViT-Tiny, so
the numbers show the pipeline runs end to end on real rasters, not what a pretrained backbone achieves.

    .venv/bin/python benchmarks/dense_probes_real.py [--backbone SPEC] [--epochs N] [--out DIR] [--head linear]
    .venv/bin/python benchmarks/dense_probes_real.py --backbone "baseline:colour?patch_size=16" --head linear
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench_cli import Parser, positive

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    ap = Parser()
    ap.add_argument("--backbone", default="arch:vit_tiny?seed=0")
    ap.add_argument("--epochs", type=positive, default=10)
    ap.add_argument("--out", default="/tmp/geodino_dense_real")
    ap.add_argument("--only", choices=["canopy", "detection"], default=None)
    ap.add_argument("--outputs", default="mixlog", help="canopy outputs to run, comma-separated: mixlog,uniform,direct")
    ap.add_argument("--head", choices=["dpt", "linear"], default="dpt", help="canopy head (linear for baseline:colour)")
    args = ap.parse_args()
    if not (DATA / "neon_sjer" / "SJER_052.tif").exists():
        print(f"skip: {DATA} not found")
        return 0
    from geodino.backbones import load_backbone
    from geodino.eval.canopy import CanopyProbeConfig, run_canopy
    from geodino.eval.detection import DetectionProbeConfig, run_detection

    bb = load_backbone(args.backbone)
    out = Path(args.out)
    rows = []
    if args.only in (None, "canopy"):
        for output in args.outputs.split(","):
            cfg = CanopyProbeConfig(
                train_images=[str(DATA / "neon_sjer" / "SJER_052.tif")],
                train_chms=[str(DATA / "neon_sjer" / "SJER_052_CHM.tif")],
                crop_size=128,
                epochs=args.epochs,
                batch_size=4,
                output=output,
                head=args.head,
                # the colour baseline has one block: four_even (the default) is refused there (cd448c2)
                layers="last" if getattr(bb, "n_blocks", 4) < 4 else "four_even",
            )
            t0 = time.perf_counter()
            m = run_canopy(bb, cfg, out / f"canopy_{output}")
            rows.append((f"canopy SJER_052 {args.head} {output}", m, time.perf_counter() - t0))
    if args.only in (None, "detection"):
        cfg = DetectionProbeConfig(
            train_images=[str(DATA / "treecrowns" / "OSBS_029.tif")],
            train_boxes=[str(DATA / "treecrowns" / "OSBS_029.csv")],
            tile_size=208,
            epochs=args.epochs,
            batch_size=2,
        )
        t0 = time.perf_counter()
        m = run_detection(bb, cfg, out / "detection")
        rows.append(("detection OSBS_029 Faster R-CNN", m, time.perf_counter() - t0))
    print(f"backbone {args.backbone}, {args.epochs} epochs, CPU")
    for name, m, secs in rows:
        shown = {k: round(v, 4) for k, v in m.items() if "/" not in k}
        print(f"{name:<36} {secs:7.1f} s  {json.dumps(shown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
