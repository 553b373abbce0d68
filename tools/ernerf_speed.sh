#!/usr/bin/env bash
# ER-NeRF's training rate and render speed beside the other NeRF methods' defaults (issue 34): at
# 128 px and small sizes (850 rays, 32 + 64 samples, every sample evaluated: the hierarchical
# sampler, so a frame's cost does not depend on how far training went), one torch thread, each
# method in turn (A B C D, ROUNDS times), on the prepared real clip may. `bench train` from scratch
# (8 iterations less a 3-iteration set-up run) and `bench render` of 2 frames less a 1-frame render
# after a 2-iteration fine-tune. Writes
# docs/speed/ernerf/METHOD_{train,render}_roundN.json; `python tools/speed_tables.py ernerf` prints the table.
#
#   bash tools/ernerf_speed.sh [METHODS] [ROUNDS]   # default: "ernerf aenerf dfrf adnerf" 1
set -euo pipefail
cd "$(dirname "$0")/.."
AEBENCH=${AEBENCH:-.venv/bin/aebench}
METHODS=${1:-ernerf aenerf dfrf adnerf}
ROUNDS=${2:-1}
DATA=data/prepared/clips-128px-25fps-12s   # real_quick's prepared clips
OUT=docs/speed/ernerf
mkdir -p "$OUT"
[ -d "$DATA/may" ] || { echo "no $DATA/may: run 'aebench run protocol=real_quick' once to prepare the clips" >&2; exit 2; }
COMMON=(scale=small data.root="$DATA" data.size=128 threads=1 train.sampler=hierarchical train.render_sampler=hierarchical ernerf.lips_share=0)
for round in $(seq 1 "$ROUNDS"); do
  for m in $METHODS; do
    "$AEBENCH" bench train method="$m" "${COMMON[@]}" train.iters=8 --json "$OUT/${m}_train_round$round.json" > /dev/null
    "$AEBENCH" bench render method="$m" "${COMMON[@]}" train.iters=2 --target may --frames 2 --json "$OUT/${m}_render_round$round.json" > /dev/null
  done
done
