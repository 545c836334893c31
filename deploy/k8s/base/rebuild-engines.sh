#!/bin/sh
# Rebuild every engine into the shared engine repository, from a dataset in the documented format
# (docs/datasets.md): TRAIN_DATA (e.g. made by `stream-tagger-train import`), else a fresh synthetic one.
# Each `train` writes a NEW version directory (engines/<engine>/<n+1>/); workers hot-reload the highest
# version, so a failed run leaves the serving versions untouched. An engine whose labels the dataset does
# not carry is skipped by its trainer with a clear error (exit 2) and the others still run.
set -u
engines="${STREAM_TAGGER_ENGINE_DIR:?}"
data="${TRAIN_DATA:-}"
eval_args=""
if [ -z "$data" ]; then
    data="${TMPDIR:-/tmp}/dataset"
    stream-tagger-train make-dataset --out "$data" --clips "${TRAIN_CLIPS:-2000}" --seed "${TRAIN_SEED:-0}" \
        --tag-noise "${TRAIN_TAG_NOISE:-0.1}" --workers "${TRAIN_WORKERS:-4}" || exit 1
    stream-tagger-train make-dataset --out "$data-eval" --clips "${EVAL_CLIPS:-500}" --seed "${EVAL_SEED:-911}" \
        --workers "${TRAIN_WORKERS:-4}" || exit 1
    eval_args="--eval-data $data-eval"
elif [ -n "${EVAL_DATA:-}" ]; then
    eval_args="--eval-data $EVAL_DATA"   # else: the dataset's rows marked split=eval
fi
status=0
for engine in ${TRAIN_ENGINES:-classifier timeliness early_action}; do
    # shellcheck disable=SC2086  # eval_args is empty or two words
    stream-tagger-train train "$engine" --data "$data" $eval_args --out "$engines" || status=1
done
exit $status
