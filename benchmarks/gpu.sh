#!/usr/bin/env bash
# Issue 15 GPU checks in one short run, printing the ratio tables:
#   0. correctness of the code that runs differently on CUDA (benchmarks/device_checks.py, ~30 s): one PASS/FAIL
#      line each: loss terms float32 under bf16 autocast, backward outside it, and no device wait (sync debug mode)
#      in an SSL step, gathered KoLeo, the distillation step and heads warm-up, the colour step on the device, a
#      probe head's training (one wait per epoch) and embed's per-batch input scaling;
#   1. backbone forward: geodino eager / transformers / timm / fast path, ViT-S/16 and ViT-L/16, batch 64,
#      224 and 512 px, float32 and bf16 (benchmarks/backbone.py --device cuda); float32 twice: the fast path's
#      3xTF32 projections (row fp32) and plain float32 products (row fp32-ieee), each with its max diff to eager;
#      bf16 twice: the libraries under autocast (row bf16) and holding bf16 weights (row bf16-weights, what
#      torch_dtype=torch.bfloat16 gives their users); the last column: each ratio's range over the repeats;
#   2. a feature raster of a generated 8k x 8k scene with `geodino embed`, fast path on vs off (GEODINO_FAST=0):
#      end-to-end px/s, the paths each run chose, and the ratio; then the same pipeline with the forward replaced
#      by a constant (benchmarks/embed.py --only-pipeline): the ceiling the CPU side sets for a GPU; and where each
#      embed run's time went (its "time" line: set-up, forward, waiting for tiles, blending, rows out, finishing);
#      the pipeline runs on the GPU with 1 reader thread and the sweep's own count; then a correctness row
#      (benchmarks/embed.py --device-check): a uint16 raster's store on the GPU against the CPU's, 1 vs auto readers;
#   3. 50 pretraining steps of configs/pretrain/sat_vits16.yaml in bf16-mixed on the same scene: s/step between
#      the first and the last logged step before the profiled ones (start-up excluded) and with start-up; then
#      what bounds a step: `trainer.profile_steps` over the last steps (device busy share, kernel launches, syncs
#      and host reads per step, and the most expensive ops);
#   4. (only with PARTS="4" or PARTS="1 2 3 4") part 3 again with trainer.compile=true: the first remedy when part 3
#      shows a host-bound step (low device-busy share, thousands of launches per step);
#   5. (only with PARTS containing 5) benchmarks/activation_checkpointing.py: the SSL step's peak memory and time
#      with activation checkpointing off / selective / full (ViT-L/16, batch 32; about a minute).
#   6. (only with PARTS containing 6) benchmarks/distill_teacher.py: a ViT-L/16 distillation teacher eager vs on the
#      fast path (bf16-mixed, compiled and not), for its forward, a ViT-S student's step and a heads warm-up step.
#
#   bash benchmarks/gpu.sh            # on a machine with a GPU (on an H200 with REPEATS=5: part 1 over 5 minutes,
#                                     # part 2 about 70 s, part 3 about 60 s; REPEATS=10, the default, takes longer)
#   bash benchmarks/gpu.sh --smoke    # every part on CPU with tiny sizes (a check that the script runs)
#
# Part 1 first compiles every (arch, size) in parallel untimed processes (one per shape, sharing inductor's on-disk
# caches), so the timed runs, one at a time, load compiled graphs instead of compiling each for a minute; the cold
# compile times are in those logs. A part that fails prints its log's tail and the next part still runs (exit 1 at
# the end). PYTHON (default .venv/bin/python), OUT_DIR (default runs/gpu_bench) and PARTS (default "0 1 2 3") may be
# set in the environment; logs go to OUT_DIR/logs.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT_DIR:-runs/gpu_bench}
LOGS="$OUT/logs"
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PARTS=${PARTS:-0 1 2 3}
mkdir -p "$LOGS"
FAILED=0

if [[ $SMOKE == 1 ]]; then
  DEV=cpu; ARCHS="vit_small"; BATCH=2; SIZES="32"; REPEATS=1; SCENE=512; STEPS=4; PROFILE="2-3"
  BB_FLAGS="--no-compile --dtypes fp32 fp32-ieee bf16 bf16-weights"
  EMBED_SPEC="arch:vit_tiny?seed=0&depth=2"; TRAIN_OVR="ssl.student.arch=vit_tiny batch_size=2 num_workers=0
    crops.global_size=64 crops.local_size=32 crops.n_local=2 trainer.accelerator=cpu trainer.strategy=auto
    trainer.devices=1 trainer.log_every_n_steps=1"; IMGS_PER_STEP=8
  TRAIN_DESC="batch 2 x (2 global 64 + 2 local 32)"
  AC_FLAGS="--arch vit_tiny --batch 1 --steps 1 --prototypes 256 --global-size 64 --local-size 32"
  DT_FLAGS="--teacher vit_tiny --student vit_tiny --batch 1 --repeats 1 --prototypes 256 --precisions bf16-mixed
    --global-size 64 --local-size 32"
else
  DEV=cuda; ARCHS="vit_small vit_large"; BATCH=64; SIZES="224 512"; REPEATS=${REPEATS:-10}; SCENE=8192; STEPS=50; PROFILE="44-47"
  BB_FLAGS="--threads 8 --dtypes fp32 fp32-ieee bf16 bf16-weights"; EMBED_SPEC="arch:vit_small?seed=0"
  TRAIN_OVR="trainer.devices=1 trainer.strategy=auto num_workers=12"; IMGS_PER_STEP=$((64 * 10))
  TRAIN_DESC="batch 64 x (2 global 224 + 8 local 96)"
  AC_FLAGS="--arch vit_large --batch 32 --steps 3 --prototypes 65536"
  DT_FLAGS="--teacher vit_large --student vit_small --batch 32 --repeats 5 --prototypes 65536 --compile
    --precisions bf16-mixed"
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: use --smoke')" || exit 2
fi
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"

fail() {  # fail PART LOG: say so, show the log's end, carry on with the next part
  echo "part $1 FAILED (log: $2):"; tail -25 "$2"; FAILED=1
}

SCENE_TIF="$OUT/scene_${SCENE}.tif"
make_scene() {
  [[ -f "$SCENE_TIF" ]] || "$PY" -c "
import sys; sys.path.insert(0, 'benchmarks')
from pathlib import Path; from embed import make_raster
make_raster(Path('$SCENE_TIF'), $SCENE)"
}

if [[ " $PARTS " == *" 0 "* ]]; then
  echo "== 0. device correctness checks ($DEV) =="
  "$PY" benchmarks/device_checks.py --device "$DEV" 2>&1 | tee "$LOGS/device_checks.log" | grep -E "^(PASS|FAIL|SKIP)"
  [[ ${PIPESTATUS[0]} == 0 ]] || fail 0 "$LOGS/device_checks.log"
fi

if [[ " $PARTS " == *" 1 "* ]]; then
  echo "== 1. backbone forward ($DEV, batch $BATCH) =="
  pids=()
  if [[ $SMOKE == 0 ]]; then  # compile every shape at once, untimed (see the header)
    for size in $SIZES; do for arch in $ARCHS; do
      # shellcheck disable=SC2086
      "$PY" benchmarks/backbone.py --device "$DEV" --archs "$arch" --batch "$BATCH" --size "$size" --repeats 1 \
        $BB_FLAGS > "$LOGS/prewarm_${arch}_${size}.log" 2>&1 &
      pids+=($!)
    done; done
  fi
  make_scene > "$LOGS/scene.log" 2>&1 || fail 2 "$LOGS/scene.log"  # CPU work while the GPU compiles
  for p in "${pids[@]}"; do wait "$p" || echo "(a pre-warm process failed: see $LOGS/prewarm_*.log)"; done
  for size in $SIZES; do
    # shellcheck disable=SC2086
    # ViT-L at 512 px and batch 64 needs ~30 GB of activations per model in float32: fine on an H100/H200
    "$PY" benchmarks/backbone.py --device "$DEV" --archs $ARCHS --batch "$BATCH" --size "$size" \
      --repeats "$REPEATS" $BB_FLAGS 2>&1 | tee "$LOGS/backbone_$size.log" | grep -E "^(\||torch|outputs)" \
      || fail 1 "$LOGS/backbone_$size.log"
  done
fi

if [[ " $PARTS " == *" 2 "* ]]; then
  echo "== 2. feature raster of a generated ${SCENE} x ${SCENE} scene =="
  declare -A PXS PATHS
  if make_scene > "$LOGS/scene.log" 2>&1; then
    for fast in 0 1; do
      rm -rf "$OUT/feat_$fast.zarr"
      t0=$(date +%s.%N)
      if GEODINO_FAST=$fast "$PY" -m geodino.cli embed "$SCENE_TIF" --backbone "$EMBED_SPEC" \
          --out "$OUT/feat_$fast.zarr" --device "$DEV" > "$LOGS/embed_$fast.log" 2>&1; then
        t1=$(date +%s.%N)
        PXS[$fast]=$("$PY" -c "print(f'{$SCENE * $SCENE / ($t1 - $t0):.0f}')")
        PATHS[$fast]=$(grep -o "inference path .*" "$LOGS/embed_$fast.log" | head -1 | sed 's/inference path //')
      else
        fail 2 "$LOGS/embed_$fast.log"; PXS[$fast]=0
      fi
    done
    echo "| embed ${SCENE}px, $EMBED_SPEC | px/s GEODINO_FAST=0 | px/s fast path | fast / eager |"
    echo "|---|---|---|---|"
    ratio=$("$PY" -c "print(f'{${PXS[1]} / max(${PXS[0]}, 1):.2f}')")
    echo "| paths: ${PATHS[0]:-?} vs ${PATHS[1]:-?} | ${PXS[0]} | ${PXS[1]} | $ratio |"
    for fast in 0 1; do  # where each run's time went (set-up, forward, waiting for tiles, blending, rows, finishing)
      echo "GEODINO_FAST=$fast: $(grep -h -o "time .* s: .*" "$LOGS/embed_$fast.log" | tail -1)"
    done
    # on the GPU (the batch crosses in uint8, is prepared and blended there), with 1 reader thread and the sweep's
    # own choice for a GPU (a quarter of the cores, 2 to 4)
    if "$PY" benchmarks/embed.py --only-pipeline --pipeline-size "$SCENE" --pipeline-rounds 2 \
        --pipeline-device "$DEV" --read-threads 1 0 > "$LOGS/pipeline.log" 2>&1; then
      grep -E "^(## 1c|\|)" "$LOGS/pipeline.log"
    else
      fail 2 "$LOGS/pipeline.log"
    fi
    # correctness of that GPU path (never run on a GPU before session 53's changes): the store against the CPU's
    if "$PY" benchmarks/embed.py --device-check --pipeline-device "$DEV" > "$LOGS/device_check.log" 2>&1; then
      grep -E "^(## 1d|\|)" "$LOGS/device_check.log"
    else
      fail 2 "$LOGS/device_check.log"
    fi
  else
    fail 2 "$LOGS/scene.log"
  fi
fi

pretrain_bench() {  # pretrain_bench PART TAG EXTRA_OVERRIDES: STEPS steps of sat_vits16, the s/step table, profile
  local part=$1 tag=$2 extra=$3 out="$OUT/pretrain_$2"
  make_scene > "$LOGS/scene.log" 2>&1 || { fail "$part" "$LOGS/scene.log"; return; }
  local cfg="$OUT/sat_vits16_bench.yaml"
  cat > "$cfg" <<YAML
_base_: $PWD/configs/pretrain/sat_vits16.yaml
ssl:
  schedules:
    reference_iters: 125000  # the recipe's lengths scaled to this short run
data:
  sources:
    - {name: scene, type: raster, paths: [$(realpath -m "$SCENE_TIF")], sensor: maxar, tile_size: 256, max_nodata_fraction: 0.2}
YAML
  rm -rf "$out"
  local t0 t1 steady
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  if "$PY" -m geodino.cli pretrain --config "$cfg" output_dir="$out" trainer.max_steps="$STEPS" \
      trainer.precision=bf16-mixed checkpoint.every_n_steps="$STEPS" trainer.profile_steps="$PROFILE" $TRAIN_OVR \
      $extra > "$LOGS/pretrain_$tag.log" 2>&1; then
    t1=$(date +%s.%N)
    # steady state: tensorboard wall times of the first and last logged loss before the profiled steps (which run
    # slower); start-up and the first steps excluded
    steady=$("$PY" -c "
import glob
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
s = []
for f in glob.glob('$out/**/events.out.tfevents*', recursive=True):
    e = EventAccumulator(f); e.Reload()
    if 'loss' in e.Tags()['scalars']:
        s = [x for x in e.Scalars('loss') if x.step < ${PROFILE%-*}]
if len(s) < 2:
    print('? | ?')
else:
    dt = (s[-1].wall_time - s[0].wall_time) / (s[-1].step - s[0].step)
    print(f'{dt:.3f} (steps {s[0].step}-{s[-1].step}) | {$IMGS_PER_STEP / dt:.0f}')")
    echo "| pretrain sat_vits16 ($tag), bf16-mixed on $DEV | steps | s/step steady | crops/s steady | s/step incl. start-up |"
    echo "|---|---|---|---|---|"
    echo "| $TRAIN_DESC | $STEPS | $steady | $("$PY" -c "print(f'{($t1 - $t0) / $STEPS:.2f}')") |"
    grep -o "profiled steps .*" "$LOGS/pretrain_$tag.log" | head -1
    local prof_txt="$out/profile/steps_$PROFILE.txt"
    [[ -f "$prof_txt" ]] && sed -n '3,20p' "$prof_txt" | cut -c1-160
  else
    fail "$part" "$LOGS/pretrain_$tag.log"
  fi
}

if [[ " $PARTS " == *" 3 "* ]]; then
  echo "== 3. $STEPS pretraining steps of sat_vits16 (bf16-mixed) =="
  pretrain_bench 3 eager ""
fi

if [[ " $PARTS " == *" 4 "* ]]; then  # not in the default PARTS: the remedy to try when part 3 shows a host-bound step
  echo "== 4. the same with trainer.compile=true (per-block torch.compile; the compile is in the start-up) =="
  pretrain_bench 4 compiled "trainer.compile=true"
fi

if [[ " $PARTS " == *" 5 "* ]]; then  # not in the default PARTS: activation memory of the SSL step per checkpointing mode
  echo "== 5. activation checkpointing: SSL step memory and time, off / selective / full =="
  # shellcheck disable=SC2086
  "$PY" benchmarks/activation_checkpointing.py --device "$DEV" $AC_FLAGS > "$LOGS/activation_checkpointing.log" 2>&1 \
    && sed -n '/^SSL step/,$p' "$LOGS/activation_checkpointing.log" || fail 5 "$LOGS/activation_checkpointing.log"
fi

if [[ " $PARTS " == *" 6 "* ]]; then  # not in the default PARTS: the distillation teacher on the fast path
  echo "== 6. distillation teacher: eager vs fast path (teacher forward, step, heads warm-up step) =="
  # shellcheck disable=SC2086
  "$PY" benchmarks/distill_teacher.py --device "$DEV" $DT_FLAGS > "$LOGS/distill_teacher.log" 2>&1 \
    && grep -E "^(\||torch)" "$LOGS/distill_teacher.log" || fail 6 "$LOGS/distill_teacher.log"
fi
exit $FAILED
