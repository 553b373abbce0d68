#!/usr/bin/env bash
# The GPU check (issue 31, item 4), for a machine with a CUDA GPU, in under 10 minutes:
#   1. the CUDA tests (tests/aenerf/test_cuda.py), which skip on a CPU-only machine;
#   2. per method (aenerf, dfrf, adnerf) and precision (fp32, tf32, bf16): the paper-scale training rate
#      (`aebench bench train scale=paper`, ITERS iterations after a warm-up) and the 512 px rendering rate
#      (`aebench bench render scale=paper`, FRAMES frames after a quick fine-tune);
# and writes everything to one JSON (default gpu_check.json): the test outcome, each bench figure,
# and the machine (provenance: GPU, CUDA, driver-visible memory).
#
#   bash tools/gpu_check.sh [OUT.json]          # ITERS=40 FRAMES=3 METHODS="aenerf dfrf adnerf" to change
#   DEVICE=cpu SIZE=16 WARMUP=1 ITERS=2 FRAMES=2 METHODS=adnerf PRECISIONS=fp32 bash tools/gpu_check.sh /tmp/x.json  # plumbing, CPU
#
# The synthetic identity is made once (512 px, 4 s) and shared by every run (data.root). A run that
# fails is recorded with its last error line, and the others go on.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-gpu_check.json}"
ITERS="${ITERS:-40}"
FRAMES="${FRAMES:-3}"
METHODS="${METHODS:-aenerf dfrf adnerf}"
PRECISIONS="${PRECISIONS:-fp32 tf32 bf16}"
DEVICE="${DEVICE:-cuda}"
WARMUP="${WARMUP:-5}"
SIZE="${SIZE:-512}"
PY="${PY:-.venv/bin/python}"
AEBENCH="${AEBENCH:-.venv/bin/aebench}"
if [ "$DEVICE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA GPU visible to torch: nothing to check here (the CPU figures are in docs/paper_scale/)" >&2
  exit 2
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bench"

echo "== CUDA tests" >&2
"$PY" -m pytest -q tests/aenerf/test_cuda.py -p no:cacheprovider > "$WORK/cuda_tests.txt" 2>&1
echo $? > "$WORK/cuda_tests.rc"
tail -3 "$WORK/cuda_tests.txt" >&2

echo "== a $SIZE px synthetic identity" >&2
"$AEBENCH" data synth --out "$WORK/synth" --identities 1 --seconds 4 --size "$SIZE" --seed 0 >&2

for m in $METHODS; do
  for p in $PRECISIONS; do
    common=("method=$m" "scale=paper" "features=mfcc" "device=$DEVICE" "train.precision=$p" "data.root=$WORK/synth"
            "data.size=$SIZE")
    echo "== $m $p: train" >&2
    "$AEBENCH" bench train "${common[@]}" "train.iters=$ITERS" --warmup "$WARMUP" --json "$WORK/bench/$m-$p-train.json" \
      > "$WORK/bench/$m-$p-train.log" 2>&1 || tail -1 "$WORK/bench/$m-$p-train.log" > "$WORK/bench/$m-$p-train.err"
    echo "== $m $p: render" >&2
    "$AEBENCH" bench render "${common[@]}" "train.iters=$ITERS" --frames "$FRAMES" --json "$WORK/bench/$m-$p-render.json" \
      > "$WORK/bench/$m-$p-render.log" 2>&1 || tail -1 "$WORK/bench/$m-$p-render.log" > "$WORK/bench/$m-$p-render.err"
  done
done

"$PY" - "$WORK" "$OUT" "$DEVICE" <<'EOF'
import json, sys
from pathlib import Path
from aebench.provenance import provenance

work, out = Path(sys.argv[1]), Path(sys.argv[2])
runs = {}
for f in sorted((work / "bench").glob("*.log")):
    key = f.stem  # method-precision-kind
    js, err = f.with_suffix(".json"), f.with_suffix(".err")
    runs[key] = json.loads(js.read_text()) if js.exists() else {"error": err.read_text().strip() if err.exists() else "no output"}
doc = {"what": "tools/gpu_check.sh: CUDA tests, paper-scale training and 512 px rendering rates per method and precision",
       "cuda_tests": {"rc": int((work / "cuda_tests.rc").read_text()),
                      "tail": (work / "cuda_tests.txt").read_text().strip().splitlines()[-3:]},
       "provenance": provenance(sys.argv[3]), "runs": runs}
out.write_text(json.dumps(doc, indent=1) + "\n")
print(f"wrote {out}: {sum('error' not in v for v in runs.values())} of {len(runs)} runs measured", file=sys.stderr)
EOF
