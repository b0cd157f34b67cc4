#!/usr/bin/env bash
# Runs the pipeline's stages. With no arguments: set up (if needed) and run every stage on the
# built-in synthetic multi-skeleton world, so each stage can be seen working on a laptop CPU.
#   ./run.sh                 setup + all stages
#   ./run.sh setup           create .venv and install the pinned packages (what CI runs)
#   ./run.sh STAGE [STAGE…]  run the named stages (see STAGES below)
# Environment: OUT (default ./out), SYNTH_NUM (frames of the synthetic world, default 600),
# SEED (default 0), PYTHON (interpreter for the venv, default python3).
set -euo pipefail
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
cd "$(dirname "$0")"

OUT=${OUT:-out}
SYNTH_NUM=${SYNTH_NUM:-600}
SEED=${SEED:-0}
VENV=.venv
PY="$VENV/bin/python"

STAGES=(data)

stage_setup() {
  if [[ ! -x "$PY" ]]; then
    "${PYTHON:-python3}" -m venv "$VENV"
  fi
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet -e '.[dev]'
  "$PY" -c 'import tensorflow, keras, cv2, pycocotools; print("setup ok: tensorflow", tensorflow.__version__, "keras", keras.__version__)'
}

stage_data() {
  echo "== data: synthetic world -> crops -> 100 mm dedup -> TFRecord shards"
  "$PY" -m posepile.synthetic --out "$OUT/synthetic_raw" --num "$SYNTH_NUM" --seed "$SEED"
  "$PY" -m posepile.build --dataset=synthetic --root="$OUT/synthetic_raw" \
    --out="$OUT/synthetic_tfrecords" --crop-size=256 --num-shards=4 --workers=2
}

run_stage() {
  local fn="stage_$1"
  if ! declare -F "$fn" >/dev/null; then
    echo "unknown stage '$1'; stages: setup ${STAGES[*]}" >&2
    exit 2
  fi
  "$fn"
}

if [[ $# -eq 0 ]]; then
  [[ -x "$PY" ]] || stage_setup
  for s in "${STAGES[@]}"; do run_stage "$s"; done
else
  for s in "$@"; do run_stage "$s"; done
fi
