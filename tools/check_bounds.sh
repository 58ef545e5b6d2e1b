#!/usr/bin/env bash
# Check that geodino works with the lower bounds declared in pyproject.toml.
#
# Builds a scratch virtual environment (never the project's .venv), installs torch first as the Makefile does,
# then `pip install -e .[EXTRAS]` with a constraints file that pins every `>=` bound of pyproject.toml to that
# exact version, and runs the test files that exercise those packages.
#
#   tools/check_bounds.sh                      # all core + [dev,stac] bounds at once (venv /tmp/bounds/lower)
#   BOUNDS_EXTRAS=dev,stac,tracking tools/check_bounds.sh   # also the [tracking] bounds
#   BOUNDS_PIN="safetensors==0.4.3" tools/check_bounds.sh        # constrain a package to another version
#   BOUNDS_OVERRIDE="safetensors==0.4.0" tools/check_bounds.sh   # force a version after the install (--no-deps)
#   BOUNDS_TESTS="tests/models" tools/check_bounds.sh           # other test files
#
# Environment: BOUNDS_DIR (default /tmp/bounds), BOUNDS_NAME (venv name, default lower), PYTHON (python3.11),
# TORCH_SPEC (as in the Makefile). The torch/torchvision bounds themselves are not checked: the installed torch
# is TORCH_SPEC. Re-running reuses the venv (delete it to start over).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
EXTRAS="${BOUNDS_EXTRAS:-dev,stac}"
# test tooling of [dev] is left unpinned (its bounds are not what a user installs)
SKIP="${BOUNDS_SKIP:-pytest pytest-timeout pytest-xdist ruff nbclient nbformat ipykernel}"
VENV="${BOUNDS_DIR:-/tmp/bounds}/${BOUNDS_NAME:-lower}"
TESTS="${BOUNDS_TESTS:-tests/test_config.py tests/test_configs_load.py tests/data/test_sensors.py
  tests/data/test_rasters.py tests/data/test_cubes.py tests/data/test_images.py tests/data/test_curate.py
  tests/data/test_torchgeo_source.py tests/embed/test_geozarr.py tests/embed/test_cog.py
  tests/embed/test_products.py tests/embed/test_classify.py tests/embed/test_scenes.py
  tests/eval/test_metrics.py tests/eval/test_detection.py tests/models/test_checkpoints.py
  tests/models/test_convert.py tests/train/test_loggers.py tests/train/test_module.py
  tests/train/test_schedules.py tests/viz/test_attention.py tests/integrations/test_plugins.py
  tests/viz/test_attention_colour_bars.py tests/models/test_stac_item.py tests/embed/test_stac_out.py
  tests/data/test_cube_band_variables.py tests/embed/test_cube_band_variables.py tests/embed/test_cube_open_once.py
  tests/embed/test_cube_resume_variables.py tests/data/test_cube_valid_range.py tests/data/test_cube_open_not_a_cube.py
  tests/data/test_cube_extent_note.py tests/data/test_data_index_valid.py tests/data/test_headers.py
  tests/data/test_index_footprint_extent.py tests/data/test_index_footprints.py tests/embed/test_map_audit.py
  tests/embed/test_products_class_alpha.py}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

mkdir -p "$(dirname "$VENV")"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# shellcheck disable=SC2086
"$VENV/bin/pip" install --quiet $TORCH_SPEC

# constraints: name==bound for every `name>=bound` of the core dependencies and the chosen extras
CONSTRAINTS="$VENV/lower-bounds.txt"
"$PYTHON" - "$ROOT/pyproject.toml" "$EXTRAS" "$TORCH_SPEC ${BOUNDS_PIN:-}" "$SKIP" >"$CONSTRAINTS" <<'PY'
import re, sys, tomllib

project = tomllib.load(open(sys.argv[1], "rb"))["project"]
reqs = list(project["dependencies"])
for extra in filter(None, sys.argv[2].split(",")):
    reqs += project["optional-dependencies"][extra]
pins = {p.split("==")[0]: p for p in sys.argv[3].split()}  # torch, torchvision and BOUNDS_PIN come first
for req in reqs:
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?>=([0-9][0-9A-Za-z.]*)", req.split(";")[0].replace(" ", ""))
    if m and m.group(1) not in pins and m.group(1) not in sys.argv[4].split():
        pins[m.group(1)] = f"{m.group(1)}=={m.group(3)}"
print("\n".join(pins.values()))
PY
echo "== constraints ($CONSTRAINTS):"; tr '\n' ' ' <"$CONSTRAINTS"; echo
"$VENV/bin/pip" install --quiet -c "$CONSTRAINTS" -e "$ROOT[$EXTRAS]"
if [ -n "${BOUNDS_OVERRIDE:-}" ]; then
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install --quiet --no-deps $BOUNDS_OVERRIDE
fi
echo "== installed versions of the bounded packages:"
"$VENV/bin/pip" list --format=freeze 2>/dev/null | grep -iE "^($(sed 's/==.*//' "$CONSTRAINTS" | paste -sd'|'))==" | tr '\n' ' '
echo
cd "$ROOT"
# shellcheck disable=SC2086
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH="$ROOT" "$VENV/bin/python" -m pytest $TESTS -x -q -p no:cacheprovider
