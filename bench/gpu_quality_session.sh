#!/usr/bin/env bash
# One lease of the lent GPU machine for issue 16: the shipped models' recipe (two direct outputs, the
# waveform SDR loss with the soft-mask term, time / robust scaling, the real MUSDB18 songs twice, their
# four speed copies and the MIR-1K training clips) at a size and a number of steps the CPU cannot
# afford, under Keras on JAX (no TensorFlow there). Here first:
#   python bench/gpu.py bundle --musdb-root ../shared/data/musdb18-7 --mir1k-root ../shared/data/mir-1k/Wavfile
#   carry: gpu .whl     command: bash bench/gpu_quality_session.sh
# then `python bench/gpu.py unpack FILES --run-dir results/runs-select/NAME` and score it as any run.
# INIT=pretrained grows the shipped base-8 model to BASE filters function-preserving (train.py
# --init-from); INIT= trains from scratch. The extra MIR-1K singers (35 MB of Opus) do not fit the carry.
# Rehearsal on a CPU (session 17: 6 min on 2 cores, caches 26 s): INIT= BASE=2 BATCH=4 STEPS=2 EPOCHS=1 TRAIN_MINUTES=1 \
#   BENCH_SECONDS=1 PIPELINE_BATCHES=2 bash bench/gpu_quality_session.sh; then rm -rf runs data/gq-*
set -uo pipefail
OUT=${OUT:-/tmp/gpu-session}
BASE=${BASE:-16}; BATCH=${BATCH:-64}; EPOCHS=${EPOCHS:-40}; STEPS=${STEPS:-150}; LR=${LR:-3e-4}
INIT=${INIT-pretrained}; TRAIN_MINUTES=${TRAIN_MINUTES:-7}; TRAIN_OVERHEAD_S=${TRAIN_OVERHEAD_S:-120}
PRECISION=${PRECISION:-float32}; BENCH_SECONDS=${BENCH_SECONDS:-5}; RUN=${RUN:-gpu-quality-b$BASE}
PIPELINE_BATCHES=${PIPELINE_BATCHES:-10}
SPEEDS="0.891 0.944 1.059 1.122"
source "$(dirname "$0")/gpu_common.sh"        # wheels, Keras on JAX, step(), the machine

step "caches from the carried songs"
python3 data_prep.py --folder-root gpu/musdb18-7 --folder-source musdb --splits train valid --out data/gq-musdb 2>&1 | tail -1
python3 data_prep.py --folder-root gpu/musdb18-7 --folder-source musdb --splits train --speed $SPEEDS --out data/gq-speed 2>&1 | tail -1
python3 data_prep.py --folder-root gpu/mir1k --folder-source mir1k --splits train --valid-fraction 0 --out data/gq-mir1k 2>&1 | tail -1

step "training speed of the $BASE-filter model with the SDR loss"
timeout ${BENCH_S:-120} python3 bench/train.py --bases "$BASE" --batch-size "$BATCH" --precision "$PRECISION" --jit on \
  --seconds "$BENCH_SECONDS" --loss sdrmask --data data/gq-musdb data/gq-mir1k --scalers robust \
  --batches "$PIPELINE_BATCHES" 2>&1 \
  | grep -v -i warning | tee "$OUT/bench.log"

step "the recipe, $BASE filters, up to $TRAIN_MINUTES min"
timeout $(python3 -c "print(int($TRAIN_MINUTES * 60 + $TRAIN_OVERHEAD_S))") python3 train.py \
  --data data/gq-musdb data/gq-mir1k data/gq-speed --source-weight musdb=2 \
  --norm time --scaler robust --loss sdrmask --target direct2 --base-filters "$BASE" \
  ${INIT:+--init-from "$INIT"} --lr "$LR" --lr-schedule cosine --epochs "$EPOCHS" --batch-size "$BATCH" \
  --steps-per-epoch "$STEPS" --precision "$PRECISION" --time-limit "$TRAIN_MINUTES" --verbose 2 \
  --run-dir runs/$RUN 2>&1 | grep -v -i warning | tee "$OUT/train.log"

step "pack"
python3 bench/gpu.py pack runs/$RUN --out "$OUT" --logs "$OUT/bench.log" "$OUT/train.log" "$OUT/machine.txt"
ls -la "$OUT"
