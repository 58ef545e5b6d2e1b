#!/usr/bin/env bash
# Issue 15 GPU checks in one short run, printing the ratio tables:
#   1. backbone forward: geodino eager / transformers / timm / fast path, ViT-S/16 and ViT-L/16, batch 64,
#      224 and 512 px, float32 and bf16 (benchmarks/backbone.py --device cuda);
#   2. a feature raster of a generated 8k x 8k scene with `geodino embed`, fast path on vs off (GEODINO_FAST=0):
#      px/s and the ratio (identical until `geodino embed` is wired to the fast path, see README);
#   3. 50 pretraining steps of configs/pretrain/sat_vits16.yaml in bf16-mixed on the same scene: s/step.
#
#   bash benchmarks/gpu.sh            # on a machine with a GPU (about 10-15 minutes)
#   bash benchmarks/gpu.sh --smoke    # every part on CPU with tiny sizes (a check that the script runs)
#
# PYTHON (default .venv/bin/python), OUT_DIR (default runs/gpu_bench) and PARTS (default "1 2 3") may be set in
# the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT_DIR:-runs/gpu_bench}
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PARTS=${PARTS:-1 2 3}
mkdir -p "$OUT"

if [[ $SMOKE == 1 ]]; then
  DEV=cpu; ARCHS="vit_small"; BATCH=2; SIZES="32"; REPEATS=1; SCENE=512; STEPS=2; BB_FLAGS="--no-compile"
  EMBED_SPEC="arch:vit_tiny?seed=0&depth=2"; TRAIN_OVR="ssl.student.arch=vit_tiny batch_size=2 num_workers=0
    crops.global_size=64 crops.local_size=32 crops.n_local=2 trainer.accelerator=cpu trainer.strategy=auto
    trainer.devices=1"
else
  DEV=cuda; ARCHS="vit_small vit_large"; BATCH=64; SIZES="224 512"; REPEATS=5; SCENE=8192; STEPS=50; BB_FLAGS=""
  EMBED_SPEC="arch:vit_small?seed=0"; TRAIN_OVR="trainer.devices=1 trainer.strategy=auto num_workers=8"
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: use --smoke')"
fi
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"

if [[ " $PARTS " == *" 1 "* ]]; then
echo "== 1. backbone forward ($DEV, batch $BATCH) =="
for size in $SIZES; do
  # shellcheck disable=SC2086
  # ViT-L at 512 px and batch 64 needs ~30 GB of activations per model in float32: fine on an H100/H200
  "$PY" benchmarks/backbone.py --device "$DEV" --archs $ARCHS --batch "$BATCH" --size "$size" --repeats "$REPEATS" $BB_FLAGS
done
fi

echo "== 2. feature raster of a generated ${SCENE} x ${SCENE} scene =="
SCENE_TIF="$OUT/scene_${SCENE}.tif"
[[ -f "$SCENE_TIF" ]] || "$PY" -c "
import sys; sys.path.insert(0, 'benchmarks')
from pathlib import Path; from embed import make_raster
make_raster(Path('$SCENE_TIF'), $SCENE)"
declare -A PXS
if [[ " $PARTS " == *" 2 "* ]]; then
for fast in 0 1; do
  rm -rf "$OUT/feat_$fast.zarr"
  t0=$(date +%s.%N)
  GEODINO_FAST=$fast "$PY" -m geodino.cli embed "$SCENE_TIF" --backbone "$EMBED_SPEC" --out "$OUT/feat_$fast.zarr" \
    --device "$DEV" --no-progress > "$OUT/embed_$fast.log" 2>&1 || { cat "$OUT/embed_$fast.log"; exit 1; }
  t1=$(date +%s.%N)
  PXS[$fast]=$("$PY" -c "print(f'{$SCENE * $SCENE / ($t1 - $t0):.0f}')")
done
echo "| embed ${SCENE}px | px/s GEODINO_FAST=0 | px/s fast path | fast / eager |"
echo "|---|---|---|---|"
echo "| $EMBED_SPEC | ${PXS[0]} | ${PXS[1]} | $("$PY" -c "print(f'{${PXS[1]} / ${PXS[0]}:.2f}')") |"
fi
[[ " $PARTS " == *" 3 "* ]] || exit 0

echo "== 3. $STEPS pretraining steps of sat_vits16 (bf16-mixed) =="
CFG="$OUT/sat_vits16_bench.yaml"
cat > "$CFG" <<EOF
_base_: $PWD/configs/pretrain/sat_vits16.yaml
output_dir: $OUT/pretrain
ssl:
  schedules:
    reference_iters: 125000  # the recipe's lengths scaled to this short run
data:
  sources:
    - {name: scene, type: raster, paths: [$(realpath -m "$SCENE_TIF")], sensor: maxar, tile_size: 256, max_nodata_fraction: 0.2}
EOF
rm -rf "$OUT/pretrain"
t0=$(date +%s.%N)
# shellcheck disable=SC2086
"$PY" -m geodino.cli pretrain --config "$CFG" trainer.max_steps="$STEPS" trainer.precision=bf16-mixed \
  checkpoint.every_n_steps="$STEPS" $TRAIN_OVR > "$OUT/pretrain.log" 2>&1 || { tail -30 "$OUT/pretrain.log"; exit 1; }
t1=$(date +%s.%N)
echo "| pretrain sat_vits16 | steps | s/step (incl. start-up) |"
echo "|---|---|---|"
echo "| bf16-mixed on $DEV | $STEPS | $("$PY" -c "print(f'{($t1 - $t0) / $STEPS:.2f}')") |"
