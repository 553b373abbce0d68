#!/usr/bin/env bash
# The proposal sampler against each reference method's default (issue 31, item 2), side by side:
# for each method, size and seed, `bench converge` of the default and of train.sampler=proposal run
# at the same time, one torch thread each (a 2-core CPU); then, per method and size, the renders of
# those checkpoints (tools/proposal_render.py, two seeds at a time). Writes
# docs/speed/sampler/METHOD_VARIANT_SIZE_seedN.json (curves) and METHOD_SIZE_seedN_renders.json;
# `python tools/speed_tables.py sampler` and `... sampler_render` print the tables.
#
#   bash tools/proposal_bench.sh [METHODS] [SIZES] [SEEDS]     # default: "aenerf dfrf" "64 128" "0 1"
set -euo pipefail
cd "$(dirname "$0")/.."
AEBENCH=${AEBENCH:-.venv/bin/aebench}
PYTHON=${PYTHON:-.venv/bin/python}
METHODS=${1:-aenerf dfrf}
SIZES=${2:-64 128}
SEEDS=${3:-0 1}
DATA=data/prepared/clips-128px-25fps-12s   # real_quick's prepared clips (aebench run protocol=real_quick prepares them)
OUT=docs/speed/sampler
CKPT=${CKPT:-/tmp/proposal_bench}
mkdir -p "$OUT" "$CKPT"
[ -d "$DATA/may" ] || { echo "no $DATA/may: run 'aebench run protocol=real_quick' once to prepare the clips" >&2; exit 2; }

converge() {  # METHOD VARIANT SIZE SEED [overrides...]
  local m=$1 v=$2 s=$3 k=$4; shift 4
  local name="${m}_${v}_${s}_seed${k}"
  "$AEBENCH" bench converge method="$m" data.root="$DATA" --target may scale=smoke data.size="$s" \
    train.iters=300 train.pretrain_iters=300 seed="$k" threads=1 "$@" --json "$OUT/$name.json" \
    --keep-checkpoint "$CKPT/$name" > "$CKPT/$name.log" 2>&1
}

for m in $METHODS; do
  for s in $SIZES; do
    for k in $SEEDS; do
      echo "$(date +%T) $m ${s}px seed $k: converge default | proposal"
      converge "$m" default "$s" "$k" & a=$!
      converge "$m" proposal "$s" "$k" train.sampler=proposal & b=$!
      wait $a; wait $b
    done
    echo "$(date +%T) $m ${s}px: renders"
    pids=()
    for k in $SEEDS; do CKPT="$CKPT" "$PYTHON" tools/proposal_render.py "$m" "$s" "$k" > "$CKPT/${m}_${s}_seed${k}_renders.log" 2>&1 & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p"; done
  done
done
echo "$(date +%T) done"
