#!/usr/bin/env bash
# Runs the pipeline's stages. With no arguments: set up (if needed) and run every stage on the
# built-in synthetic multi-skeleton world, so each stage can be seen working on a laptop CPU.
#   ./run.sh                 setup + all stages (~25 min on 2 idle CPU cores, 52 on loaded
#                            ones; QUICK=1: minutes)
#   ./run.sh setup           create .venv and install the pinned packages (what CI runs)
#   ./run.sh STAGE [STAGE…]  run the named stages, in the given order (see STAGES below)
#   ./run.sh rehearsal       the paper's 28-dataset pipeline end to end on synthetic people
#                            written in every dataset's real format (python -m rehearsal; under
#                            20 min on 2 CPU cores; REHEARSAL_SIZE=ci: the CI test's, a few min)
# Environment: OUT (default ./out), SYNTH_NUM (frames of the synthetic world's 3D datasets),
# SYNTH_NUM_2D (frames of its 2D-only dataset synwild), CROP_SIZE and BOX_SCALE (stored crops:
# side px, margin in box sides), PROC_SIDE (the model's input side px), BACKBONE (overrides the
# CPU config's 'small', e.g. small-deep: README, "Backbone and resolution probes"), BASE_LR (overrides the
# CPU config's base learning rate of the base training), TRAIN_STEPS, FINETUNE_STEPS,
# ACAE_LATENTS, ACAE_CENTRE_LATENTS, ACAE_STEPS, NUM_AUG (test-time augmentations in
# evaluation), TRAIN_EVAL_BATCHES (training batches evaluated at each validation, for the
# learning curve), SEED,
# PYTHON (interpreter for the venv, default python3), QUICK=1 (a smoke run: tiny sizes, the
# numbers mean nothing), REHEARSAL_SIZE (default | ci).
set -euo pipefail
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
cd "$(dirname "$0")"

if [[ "${QUICK:-0}" == 1 ]]; then
  SYNTH_NUM=${SYNTH_NUM:-600}; SYNTH_NUM_2D=${SYNTH_NUM_2D:-200}
  TRAIN_STEPS=${TRAIN_STEPS:-60}; FINETUNE_STEPS=${FINETUNE_STEPS:-20}
  ACAE_STEPS=${ACAE_STEPS:-2000}
fi
OUT=${OUT:-out}
SYNTH_NUM=${SYNTH_NUM:-12000}
SYNTH_NUM_2D=${SYNTH_NUM_2D:-3000}
CROP_SIZE=${CROP_SIZE:-384}
PROC_SIDE=${PROC_SIDE:-192}
BASE_LR=${BASE_LR:-}
BACKBONE=${BACKBONE:-}
BOX_SCALE=${BOX_SCALE:-2.0}
TRAIN_STEPS=${TRAIN_STEPS:-2000}
TRAIN_EVAL_BATCHES=${TRAIN_EVAL_BATCHES:-4}
FINETUNE_STEPS=${FINETUNE_STEPS:-400}
# The synthetic world's 132 joints (6 formats) get 32 latents, centre ones in proportion to its
# centre joints (README, "The ACAE"); the released real-data fit: 48 latents, 8 of them centre.
ACAE_LATENTS=${ACAE_LATENTS:-32}
ACAE_CENTRE_LATENTS=${ACAE_CENTRE_LATENTS:-auto}
ACAE_STEPS=${ACAE_STEPS:-30000}
NUM_AUG=${NUM_AUG:-1}
SEED=${SEED:-0}
VENV=.venv
PY="$VENV/bin/python"
VARIANTS=(control output_reg latent hybrid)

STAGES=(data mix train export evaluate pseudo_gt acae finetune compare demo)

stage_setup() {
  if [[ ! -x "$PY" ]]; then
    "${PYTHON:-python3}" -m venv "$VENV"
  fi
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet -e '.[dev]'
  "$PY" -c 'import tensorflow, keras, cv2, pycocotools, tf2onnx, onnxruntime, ai_edge_litert, tensorflow_hub, imageio_ffmpeg; print("setup ok: tensorflow", tensorflow.__version__, "keras", keras.__version__)'
}

stage_data() {
  echo "== data: synthetic world -> 100 mm dedup -> perspective crops -> TFRecord shards"
  "$PY" -m posepile.synthetic --out "$OUT/synthetic_raw" --num "$SYNTH_NUM" \
    --num-2d "$SYNTH_NUM_2D" --seed "$SEED"
  "$PY" -m posepile.build --dataset=synthetic --root="$OUT/synthetic_raw" \
    --out="$OUT/synthetic_tfrecords" --crop-size="$CROP_SIZE" --box-scale="$BOX_SCALE" \
    --num-shards=4 --workers=2
}

stage_mix() {
  echo "== mix: which datasets make a training batch (train and validation shards)"
  for split in train validation; do
    "$PY" -m posepile.mix --config=configs/mix_synthetic_cpu.json \
      --tfrecord-root="$OUT/synthetic_tfrecords" --out="$OUT/input_$split.json" --split=$split \
      --proc-side="$PROC_SIDE"
  done
}

# A copy of configs/train_synthetic_cpu.json with the step count (and extra fields) replaced.
write_train_config() {  # OUT_FILE STEPS [KEY=JSON_VALUE ...]
  "$PY" - "$1" "$2" "$PROC_SIDE" "$BASE_LR" "$BACKBONE" "${@:3}" <<'EOF'
import json, sys
from posepile.atomic_io import write_json_atomic
out, steps, proc_side, base_lr, backbone, *extra = sys.argv[1:]
config = json.load(open('configs/train_synthetic_cpu.json'))
config['training_steps'] = int(steps)
config['model']['proc_side'] = int(proc_side)
if backbone:
    config['model']['backbone'] = backbone
if base_lr:
    config['base_learning_rate'] = float(base_lr)
config['bn_inference_steps'] = min(config['bn_inference_steps'], int(steps) // 10)
loss = config.setdefault('loss', {})
# The released schedule's early phases (5000 and 500 of 400k steps) scaled to a short run.
loss['abs_loss_start_step'] = min(loss.get('abs_loss_start_step', 5000), int(steps) // 4)
loss['weak_perspective_steps'] = min(loss.get('weak_perspective_steps', 500), int(steps) // 20)
for item in extra:
    key, value = item.split('=', 1)
    config[key] = json.loads(value)
write_json_atomic(out, config)
EOF
}

stage_train() {
  echo "== train: MeTRAbs with one output per joint of every synthetic skeleton ($TRAIN_STEPS steps)"
  write_train_config "$OUT/train_config.json" "$TRAIN_STEPS"
  "$PY" -m metrabs.train --config="$OUT/train_config.json" --logdir="$OUT/train" --data=tfrecords \
    --input-config="$OUT/input_train.json" --val-input-config="$OUT/input_validation.json" \
    --train-eval-batches="$TRAIN_EVAL_BATCHES" --no-progress
}

export_and_evaluate() {  # LOGDIR NAME
  "$PY" -m metrabs.export --checkpoint="$1" --out="$OUT/models/$2"
  "$PY" -m eval.run --benchmark=synthetic --root="$OUT/synthetic_raw" --model="$OUT/models/$2" \
    --num-aug="$NUM_AUG" --out="$OUT/eval/$2.json"
}

stage_export() {
  echo "== export: SavedModel (predict_crops / estimate_poses / detect_poses), its crop model as ONNX and TFLite"
  "$PY" -m metrabs.export --checkpoint="$OUT/train" --out="$OUT/models/separate_heads"
  "$PY" -m metrabs.export --savedmodel="$OUT/models/separate_heads" --format=onnx \
    --out="$OUT/models/separate_heads.onnx"
  "$PY" -m metrabs.export --savedmodel="$OUT/models/separate_heads" --format=tflite \
    --out="$OUT/models/separate_heads.tflite"
  "$PY" -m metrabs.export --savedmodel="$OUT/models/separate_heads" --format=tflite \
    --precision=float16 --out="$OUT/models/separate_heads_fp16.tflite"
}

stage_evaluate() {
  echo "== evaluate: synthetic test split (all skeletons known), with the mean-pose baseline"
  "$PY" -m eval.run --benchmark=synthetic --root="$OUT/synthetic_raw" \
    --model="$OUT/models/separate_heads" --num-aug="$NUM_AUG" --out="$OUT/eval/separate_heads.json"
}

stage_pseudo_gt() {
  echo "== pseudo_gt: every joint of every skeleton predicted on the training crops"
  "$PY" -m metrabs.pseudo_gt --model="$OUT/train" --input-config="$OUT/input_train.json" \
    --out="$OUT/pseudo_gt.npz" --flip-average --no-progress
}

stage_acae() {
  echo "== acae: affine-combining autoencoder with $ACAE_LATENTS latent points ($ACAE_STEPS steps)"
  "$PY" -m acae.train --poses="$OUT/pseudo_gt.npz" --latents="$ACAE_LATENTS" \
    --centre-latents="$ACAE_CENTRE_LATENTS" --steps="$ACAE_STEPS" --out="$OUT/acae" --no-progress
}

stage_finetune() {
  echo "== finetune: the control and the three consistency fine-tunings ($FINETUNE_STEPS steps each)"
  # As released (FinetuneConfig): backbone at base/30, heads on their own schedule; the hybrid's
  # distillation starts after 1/8 of the run (5000 of 40k) and the weight decay is normalised
  # by the pretraining's length.
  local finetune="{\"teacher_start_step\": $((FINETUNE_STEPS / 8)), \"weight_decay_steps\": $TRAIN_STEPS}"
  for mode in "${VARIANTS[@]}"; do
    local acae=()
    [[ "$mode" == control ]] || acae=("acae_weights=\"$OUT/acae/weights.npz\"")
    write_train_config "$OUT/finetune_$mode.json" "$FINETUNE_STEPS" \
      "finetune_mode=\"$mode\"" "finetune=$finetune" "${acae[@]}"
    "$PY" -m metrabs.train --config="$OUT/finetune_$mode.json" --logdir="$OUT/finetune_$mode" \
      --data=tfrecords --input-config="$OUT/input_train.json" \
      --val-input-config="$OUT/input_validation.json" --init-from="$OUT/train" --no-progress
    export_and_evaluate "$OUT/finetune_$mode" "$mode"
  done
}

stage_compare() {
  echo "== compare: accuracy and cross-skeleton consistency (mm), synthetic test split"
  "$PY" -m eval.compare "separate heads=$OUT/eval/separate_heads.json" \
    "separate heads, fine-tuned without ACAE (control)=$OUT/eval/control.json" \
    "(a) output regularization=$OUT/eval/output_reg.json" \
    "(b) direct latent prediction=$OUT/eval/latent.json" \
    "(c) hybrid student-teacher=$OUT/eval/hybrid.json" | tee "$OUT/eval/comparison.md"
}

stage_demo() {
  echo "== demo: 2D skeletons and a 3D plot for one synthetic test image, beside its ground truth"
  local image
  # sed reads all its input: head would close the pipe early, and pipefail would fail the stage.
  image=$(find "$OUT/synthetic_raw" -path '*/images/test/*' -name '*.jpg' | sort | sed -n 1p)
  # The image's annotation is found in the world: the picture shows it dashed, the title the
  # model, skeleton and error.
  "$PY" -m metrabs.demo --model="$OUT/models/hybrid" --image="$image" --out="$OUT/demo.png" \
    --skeleton=synsmpl
}

stage_rehearsal() {
  echo "== rehearsal: the paper's pipeline on every dataset's real format (out: $OUT/rehearsal)"
  [[ -x "$PY" ]] || stage_setup
  "$PY" -m rehearsal --out="$OUT/rehearsal" --size="${REHEARSAL_SIZE:-default}" --fresh
}

STAGE_TIMES=()
run_stage() {
  local fn="stage_$1" start=$SECONDS
  if ! declare -F "$fn" >/dev/null; then
    echo "unknown stage '$1'; stages: setup ${STAGES[*]} rehearsal" >&2
    exit 2
  fi
  "$fn"
  STAGE_TIMES+=("$1 $((SECONDS - start))")
}

# Wall time per stage, so a slow machine shows where the time goes (README, "Measured").
print_stage_times() {
  (( ${#STAGE_TIMES[@]} > 1 )) || return 0
  local total=0 line
  echo "== wall time per stage (s)"
  for line in "${STAGE_TIMES[@]}"; do
    echo "  $line"
    total=$((total + ${line##* }))
  done
  echo "  total $total ($((total / 60)) min $((total % 60)) s)"
}

if [[ $# -eq 0 ]]; then
  [[ -x "$PY" ]] || run_stage setup
  for s in "${STAGES[@]}"; do run_stage "$s"; done
else
  for s in "$@"; do run_stage "$s"; done
fi
print_stage_times
