#!/bin/sh
# Rebuild every engine from a fresh synthetic dataset into the shared engine repository.
# Each `train` writes a NEW version directory (engines/<engine>/<n+1>/); workers hot-reload the highest
# version, so a failed run leaves the serving versions untouched.
set -eu
data="${TMPDIR:-/tmp}/dataset"
engines="${STREAM_TAGGER_ENGINE_DIR:?}"
stream-tagger-train make-dataset --out "$data" --clips "${TRAIN_CLIPS:-2000}" --seed "${TRAIN_SEED:-0}" \
    --tag-noise "${TRAIN_TAG_NOISE:-0.1}" --workers "${TRAIN_WORKERS:-4}"
for engine in classifier timeliness early_action; do
    stream-tagger-train train "$engine" --data "$data" --engines "$engines"
done
