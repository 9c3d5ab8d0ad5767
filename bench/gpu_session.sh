#!/usr/bin/env bash
# One lease of the lent GPU machine (no TensorFlow there; bench/gpu.py says how the files get there
# and back): Keras on JAX, caches built there from the carried FLAC songs, the 64-filter model's
# training speed (bench/train.py), then the paper configuration (Table I's best row: frequency /
# Min-Max / MAE, 64 filters, Adam 1e-3, batch 64, 20 epochs of the paper's number of steps) for as
# long as TRAIN_MINUTES allows, packed as float16 weights.
#
#   carry: gpu .whl     command: bash bench/gpu_session.sh
# Smaller settings for a rehearsal on a CPU: BASE=4 BATCH=4 STEPS=3 EPOCHS=2 BENCH_SECONDS=2 bash bench/gpu_session.sh
set -uo pipefail
OUT=${OUT:-/tmp/gpu-session}
BASE=${BASE:-64}; BATCH=${BATCH:-64}; EPOCHS=${EPOCHS:-20}
# The paper's 20 epochs over full MUSDB18 (100 songs, ~7,900 windows of 2.97 s): 124 steps of 64 each.
STEPS=${STEPS:-124}; TRAIN_MINUTES=${TRAIN_MINUTES:-3.5}; BENCH_SECONDS=${BENCH_SECONDS:-6}
PRECISION=${PRECISION:-float32}; BENCH_PRECISIONS=${BENCH_PRECISIONS:-float32 mixed_bfloat16}
RUN=${RUN:-gpu-frequency-minmax-mae}; TRAIN_OVERHEAD_S=${TRAIN_OVERHEAD_S:-120}
source "$(dirname "$0")/gpu_common.sh"        # wheels, Keras on JAX, step(), the machine

step "caches from the carried songs"
python3 data_prep.py --folder-root gpu/musdb18-7 --out data/gpu 2>&1 | tail -2

step "training speed of the $BASE-filter model"
# XLA (jit on) first: under JAX "jit off" runs op by op, the slow case, measured last and briefly.
for jit in on off; do
  timeout $([ $jit = on ] && echo ${BENCH_ON_S:-100} || echo ${BENCH_OFF_S:-50}) python3 bench/train.py --bases "$BASE" --batch-size "$BATCH" \
    --precision $BENCH_PRECISIONS --jit $jit --seconds "$BENCH_SECONDS" --skip pipeline 2>&1 \
    | grep -v -i warning | tee -a "$OUT/bench.log"
done

step "paper configuration, $BASE filters, up to $TRAIN_MINUTES min"
timeout $(python3 -c "print(int($TRAIN_MINUTES * 60 + $TRAIN_OVERHEAD_S))") python3 train.py --data data/gpu \
  --norm frequency --scaler minmax --loss mae --base-filters "$BASE" --epochs "$EPOCHS" --batch-size "$BATCH" \
  --steps-per-epoch "$STEPS" --precision "$PRECISION" --time-limit "$TRAIN_MINUTES" --verbose 2 \
  --run-dir runs/$RUN 2>&1 | grep -v -i warning | tee "$OUT/train.log"

step "pack"
python3 bench/gpu.py pack runs/$RUN --out "$OUT" --logs "$OUT/bench.log" "$OUT/train.log" "$OUT/machine.txt"
ls -la "$OUT"
