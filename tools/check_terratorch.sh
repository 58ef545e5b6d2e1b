#!/usr/bin/env bash
# Check geodino's TerraTorch backbone (`geodino_vit`) against the real TerraTorch, offline.
#
# TerraTorch is not a geodino dependency, so the normal suite only tests the registration against a stand-in of
# its registry. This script builds a scratch virtual environment (never the project's .venv), installs torch
# first as the Makefile does, then TerraTorch and geodino (editable, from this checkout), and runs
# tests/integrations/test_terratorch_real.py: its registries, EncoderDecoderFactory with FCN and UperNet
# decoders at 6 bands, a SemanticSegmentationTask training step, `terratorch fit --custom_modules_path`,
# backbone_pretrained_bands, EmbeddingGenerationTask and LoRA through `peft_config` (peft is installed too).
#
#   tools/check_terratorch.sh                                   # TerraTorch 1.2.13 (venv /tmp/terratorch/venv)
#   TT_VERSION=1.2.10 PYTHON=python3.11 tools/check_terratorch.sh   # another release / interpreter
#
# Environment: TT_VERSION (default 1.2.13), PYTHON (default python3.12: TerraTorch 1.2.12+ needs torchgeo 0.9,
# which needs Python >= 3.12; 1.2.4-1.2.10 install on 3.11), TT_DIR (default /tmp/terratorch), TORCH_SPEC.
# Re-running reuses the venv (delete it to start over). About 3 min to build the venv, 1 min for the tests.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3.12}"
TT_VERSION="${TT_VERSION:-1.2.13}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
VENV="${TT_DIR:-/tmp/terratorch}/venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

mkdir -p "$(dirname "$VENV")"
if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" --version >/dev/null 2>&1; then
  echo "check_terratorch.sh: $PYTHON does not run (TerraTorch 1.2.12+ needs Python 3.12); set PYTHON=/path/to/python3.12" >&2
  exit 2
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# shellcheck disable=SC2086
"$VENV/bin/pip" install --quiet $TORCH_SPEC
# shellcheck disable=SC2086
"$VENV/bin/pip" install --quiet $TORCH_SPEC "terratorch==$TT_VERSION" -e "$ROOT" peft pytest pytest-timeout
echo "== $("$VENV/bin/python" --version):" \
  "$("$VENV/bin/pip" list --format=freeze 2>/dev/null | grep -iE '^(terratorch|torch|torchgeo|timm|lightning|segmentation.models.pytorch|peft)==' | tr '\n' ' ')"
cd "$ROOT"
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH="$ROOT" "$VENV/bin/python" -m pytest \
  tests/integrations/test_terratorch_real.py -q -p no:cacheprovider "$@"
