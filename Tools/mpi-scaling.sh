#!/usr/bin/env bash
# Data-parallel scaling on this machine, for the README: training images/s of BasicUNet and the
# tutorial's UNet2DModel on Fashion-MNIST (CPU backend) as one process on one core, as two
# processes on one core each (mpirun --bind-to core), and as one process on both cores; the
# scaling efficiency, and the time rank 0 spends in collectives per step (log.jsonl's
# communication_seconds: the gradient all-reduce, plus any wait for the slower process).
# Usage: Tools/mpi-scaling.sh [STEPS] (default 60; the first 10 steps are warm-up and not counted).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-60}
BIN=.build/release/diffuse
[ -x "$BIN" ] || { echo "build first: swift build -c release --traits MPI" >&2; exit 2; }
# Read whole first: `grep -q` stops at the match, and the line printed after it would end
# `diffuse devices` with SIGPIPE (a failed pipeline under pipefail).
grep -q "mpi: Open MPI" <<< "$("$BIN" devices)" || { echo "$BIN was built without --traits MPI" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
MPIRUN=(mpirun --allow-run-as-root -np 2 --bind-to core --map-by core)

# images/s and communication seconds per step after the first 10 steps of RUN's log.jsonl.
summarize() {
  python3 - "$1" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1] + "/log.jsonl")]
counted = [l for l in lines if l["step"] > 10]
seconds = sum(l["step"] - p["step"] for p, l in zip(lines, lines[1:]) if l["step"] > 10)
rate = sum(l["images_per_second"] * (l["step"] - p["step"]) for p, l in zip(lines, lines[1:]) if l["step"] > 10) / seconds
comm = sum(l.get("communication_seconds") or 0 for l in counted) / seconds
print(f"{rate:.1f} {comm * 1000:.1f}")
EOF
}

printf "| model | batch | 1 process, 1 core | 2 processes, 1 core each | efficiency | collectives per step (rank 0) | 1 process, 2 cores |\n"
printf "|---|---|---|---|---|---|---|\n"
for model in basic-unet unet2d; do
  args=(train --model "$model" --device cpu --batch-size 64 --epochs 1 --max-steps "$STEPS" --log-every 10 --quiet
        --checkpoint-every 100000)
  taskset -c 0 "$BIN" "${args[@]}" --output "$WORK/$model-1" > /dev/null
  "${MPIRUN[@]}" "$BIN" "${args[@]}" --output "$WORK/$model-2" > /dev/null
  "$BIN" "${args[@]}" --output "$WORK/$model-both" > /dev/null
  read -r one _ <<< "$(summarize "$WORK/$model-1")"
  read -r two comm <<< "$(summarize "$WORK/$model-2")"
  read -r both _ <<< "$(summarize "$WORK/$model-both")"
  efficiency=$(python3 -c "print(f'{$two / (2 * $one) * 100:.0f}%')")
  printf "| %s | 64 | %s | %s | %s | %s ms | %s |\n" "$model" "$one" "$two" "$efficiency" "$comm" "$both"
done
