"""Evidence for `geodino data curate` and `geodino viz attention` on the real sample data (../shared/data, or
$GEODINO_SAMPLE_DATA).

1. Planted duplicates: eurosat_3000 plus copies of 300 of its chips (100 exact, 100 re-encoded as JPEG q=60,
   100 mirrored left-right) in a folder sorted after the originals; precision and recall of the near-duplicate
   filter per kind (a removed tile counts as correct when it is a planted copy).
2. Class balance: labels are used only to report. Balanced sampling of half the archive vs an equal-size random
   list, on eurosat_3000 (balanced already) and on an imbalanced slice (600 Forest, 600 Pasture, 600 River,
   60 Industrial, 60 Residential), from the same embeddings.
3. Pretraining on the curated list vs an equal-size random list (`--pretrain-steps N`, optional): the recipe of
   benchmarks/pretrain_quality.py for N steps on each list (data.sources reads the lists directly), then the
   same kNN / logistic-regression evaluation on all 3,000 chips.
4. Attention: `attention_panel.png` for the random-init and the pretrained backbone on two chips and a scene,
   written to docs/img/attention/ (`--docs`).

    .venv/bin/python benchmarks/curate_evidence.py --backbone runs/x/export/teacher.pth [--pretrain-steps 150]

The backbone must be pretrained: a random-init one embeds most chips alike, the near-duplicate filter then removes
nearly all of them, and the run stops with one line saying so (exit 2), as it does for any other bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from bench_cli import Parser

from geodino.errors import GeoDinoError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DATA = Path(os.environ.get("GEODINO_SAMPLE_DATA", ROOT.parent / "shared" / "data"))
CHIPS = DATA / "eurosat_3000"
IMBALANCED = {"Forest": 600, "Pasture": 600, "River": 600, "Industrial": 60, "Residential": 60}


def planted_archive(root: Path, seed: int = 0) -> tuple[list[str], dict[str, str]]:
    """Symlinks to every chip plus 300 planted copies under zz_planted/; returns (labels per file, kind per copy)."""
    from PIL import Image, ImageOps

    if root.exists():
        shutil.rmtree(root)
    files = sorted(CHIPS.glob("*/*.jpg"))
    for f in files:
        (root / f.parent.name).mkdir(parents=True, exist_ok=True)
        (root / f.parent.name / f.name).symlink_to(f)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(files), 300, replace=False)
    (root / "zz_planted").mkdir()
    kinds = {}
    for j, k in enumerate(picks):
        kind = ("exact", "jpeg60", "mirror")[j // 100]
        name = f"{kind}_{j:03d}_{files[k].parent.name}.{'jpg' if kind == 'exact' else 'png'}"
        dst = root / "zz_planted" / name
        if kind == "exact":
            shutil.copy(files[k], dst)
        else:
            im = Image.open(files[k]).convert("RGB")
            if kind == "jpeg60":
                im.save(dst.with_suffix(".jpg"), quality=60)
                dst = dst.with_suffix(".jpg")
            else:
                ImageOps.mirror(im).save(dst)
        kinds[str(dst.resolve())] = kind
    return [f.parent.name for f in files], kinds


def label_of(path: str) -> str:
    p = Path(path)
    return p.name.split("_")[2].split(".")[0] if p.parent.name == "zz_planted" else p.parent.name


def balance(labels: list[str]) -> dict[str, int]:
    names = sorted(IMBALANCED)
    return {n: int(sum(1 for x in labels if x == n)) for n in names}


def main() -> int:
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="", help="spec used to embed the chips (a pretrained teacher; required)")
    ap.add_argument("--random-backbone", default="arch:vit_tiny?patch_size=8&depth=6&layerscale_init=1.0&seed=0")
    ap.add_argument("--out", default="runs/curate_evidence")
    ap.add_argument("--dedup", type=float, default=0.95)
    ap.add_argument("--clusters", type=int, nargs="+", default=[60, 12])
    ap.add_argument("--max-cloud", type=float, default=0.5,
                    help="the curate default; EuroSAT is cloud-free and the `rgb` rule (the default for RGB) keeps "
                    "its bright roofs (benchmarks/cloud_rules.py); the report counts what it drops")  # fmt: skip
    ap.add_argument("--pretrain-steps", type=int, default=0)
    ap.add_argument("--docs", action="store_true", help="write the attention panels into docs/img/attention/")
    args = ap.parse_args()
    if not args.backbone:  # `make benchmarks` runs every script bare: say what is missing and exit 0, as for data
        print("curate_evidence: skipped, needs --backbone SPEC (a pretrained teacher; see the docstring)")
        return 0
    if not CHIPS.is_dir():
        print(f"sample data not found at {CHIPS} (skipped)")
        return 0
    from geodino.data.curate import CurateConfig, balanced_sample, curate, hierarchical_kmeans

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    _, kinds = planted_archive(out / "archive")
    cfg = CurateConfig(paths=[str(out / "archive")], type="images", sensor="imagenet", backbone=args.backbone,
                       size=1500, clusters=list(args.clusters), dedup=args.dedup, seed=0,
                       max_cloud=args.max_cloud)  # fmt: skip
    try:
        report = curate(cfg, out / "curated", progress=False)
    except GeoDinoError as exc:
        raise _explain(exc, args.backbone, out / "curated" / "embeddings", args.dedup) from exc
    import pandas as pd

    tiles = pd.read_parquet(out / "curated" / "tiles.parquet")
    removed = set(tiles.loc[tiles.status == "duplicate", "path"])
    planted = set(kinds)
    cloudy = tiles[tiles.cloud_share > 0.5]
    res_cloud = {k: int(n) for k, n in cloudy.path.map(label_of).value_counts().items()}
    res: dict = {
        "curate_s": round(time.perf_counter() - t0, 1),
        "removed": report["removed"],
        "cloud_rule_drops_by_class": res_cloud,
    }
    tp = len(removed & planted)
    res["dedup"] = {
        "threshold": args.dedup, "removed": len(removed), "planted": len(planted),
        "precision": round(tp / max(len(removed), 1), 3), "recall": round(tp / len(planted), 3),
        "recall_by_kind": {k: round(sum(1 for p in removed if kinds.get(p) == k) / 100, 3)
                           for k in ("exact", "jpeg60", "mirror")},
    }  # fmt: skip
    kept = tiles[tiles.status == "kept"]
    pool = tiles[tiles.status.isin(["kept", "not sampled"])]
    rng = np.random.default_rng(0)
    rand = pool.iloc[rng.choice(len(pool), len(kept), replace=False)]
    res["balance_eurosat_3000"] = {
        "pool": balance([label_of(p) for p in pool.path]),
        "curated": balance([label_of(p) for p in kept.path]),
        "random": balance([label_of(p) for p in rand.path]),
    }
    # imbalanced slice, same embeddings
    parts = sorted((out / "curated" / "embeddings").glob("part_*.npz"))
    emb = np.concatenate([np.load(p)["emb"] for p in parts])
    lab = np.array([label_of(p) for p in tiles.path])
    orig = np.array([Path(p).parent.name != "zz_planted" for p in tiles.path])
    sel = np.concatenate([np.flatnonzero((lab == c) & orig)[:n] for c, n in IMBALANCED.items()])
    levels = hierarchical_kmeans(emb[sel], list(args.clusters), seed=0)
    size = 600
    picked = sel[balanced_sample(emb[sel], levels, size, seed=0)]
    res["balance_imbalanced_slice"] = {
        "pool": balance(lab[sel].tolist()),
        "curated": balance(lab[picked].tolist()),
        "random": balance(lab[rng.choice(sel, size, replace=False)].tolist()),
    }
    rand.drop(columns=["geometry"], errors="ignore").to_parquet(out / "random.parquet")
    if args.pretrain_steps:
        res["pretrain"] = pretrain_compare(out, args.pretrain_steps)
    if args.docs:
        res["attention"] = attention_panels(args.backbone, args.random_backbone)
    (out / "evidence.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0


def _explain(exc: GeoDinoError, backbone: str, embeddings: Path, dedup: float) -> GeoDinoError:
    """The curation's error, or when most chips are near-duplicates of each other in the cached embeddings (what a
    random-init backbone gives) one line saying that this benchmark needs a pretrained teacher."""
    from geodino.data.curate.dedup import near_duplicates
    from geodino.errors import InputError

    parts = sorted(embeddings.glob("part_*.npz"))
    if not parts:
        return exc
    emb = np.concatenate([np.load(p)["emb"] for p in parts])
    share = float(near_duplicates(emb, dedup).mean())
    if share < 0.5:
        return exc
    return InputError(
        f"--backbone {backbone} embeds {share:.0%} of the {len(emb)} chips within cosine {dedup} of another one (a "
        "random-init backbone does), so the curation removes nearly all and there is nothing to measure; pass a "
        "pretrained teacher, e.g. --backbone runs/x/export/teacher.pth (--random-backbone is only for the attention "
        "panels)"
    )


def pretrain_compare(out: Path, steps: int) -> dict:
    """The pretrain_quality recipe for `steps` on the curated and on the random list; kNN / logreg on all chips."""
    import pandas as pd
    import pretrain_quality as pq

    from geodino.train.pretrain import pretrain

    x, y, _, _ = pq.load_chips(CHIPS)
    rows = {}
    for name, lst in (("curated", out / "curated" / "curated.parquet"), ("random", out / "random.parquet")):
        src = f"[{{name: chips, type: images, paths: [{lst}], sensor: imagenet}}]"
        t0 = time.perf_counter()
        run = pretrain(pq._load_cfg(out / f"pretrain_{name}", steps, src, []))
        rows[name] = {**pq.evaluate(pq.vit_features(pq.load_teacher(run), x), y),
                      "steps": steps, "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
        print(name, rows[name], flush=True)
    print(f"\n| list ({steps} steps) | tiles | kNN top-1 % | logreg top-1 % | wall s |\n|---|---|---|---|---|")
    for name, lst in (("curated", out / "curated" / "curated.parquet"), ("random", out / "random.parquet")):
        r = rows[name]
        n = len(pd.read_parquet(lst))
        print(f"| {name} | {n} | {r['knn']} | {r['logreg']} | {r['wall_s']} |", flush=True)
    return rows


def attention_panels(pretrained: str, random_spec: str) -> dict:
    from geodino.backbones import load_backbone
    from geodino.viz.attention import attention_maps, read_input, write_attention

    docs = ROOT / "docs" / "img" / "attention"
    inputs = {
        "residential": (CHIPS / "Residential" / sorted(p.name for p in (CHIPS / "Residential").iterdir())[0], None),
        "river": (CHIPS / "River" / sorted(p.name for p in (CHIPS / "River").iterdir())[0], None),
        "neon_sjer": (DATA / "neon_sjer" / "SJER_052.tif", (0, 0, 400, 400)),
    }
    kept = {}
    for tag, spec in (("random", random_spec), ("pretrained", pretrained)):
        bb = load_backbone(spec)
        for name, (path, window) in inputs.items():
            sample = read_input(path, window=window)
            maps = attention_maps(bb, sample, point=(sample["image"].shape[2] // 2, sample["image"].shape[1] // 2))
            files = write_attention(maps, sample, Path("/tmp") / "att_evidence" / tag / name, overwrite=True)
            docs.mkdir(parents=True, exist_ok=True)
            shutil.copy(files["panel"], docs / f"{name}_{tag}.png")
            kept[f"{name}_{tag}"] = {"kept_patch_share": round(maps.info["kept_share"], 3)}
    return kept


if __name__ == "__main__":
    try:
        sys.exit(main())
    except GeoDinoError as exc:  # bad input (a random --backbone, a missing file): one line, as the CLI says it
        print(f"curate_evidence: error: {exc}", file=sys.stderr)
        sys.exit(2)
