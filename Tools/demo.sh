#!/usr/bin/env bash
# The quick start: installs what is missing, builds in release, trains the tutorial's BasicUNet on
# Fashion-MNIST with the defaults, then samples from it. Extra arguments go to `diffuse train`.
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/setup.sh
# The MPI trait where Open MPI is installed, as Tools/test.sh builds, so the two share one build.
TRAITS=()
if pkg-config --exists ompi 2>/dev/null; then TRAITS=(--traits MPI); fi
swift build -c release --product diffuse "${TRAITS[@]}"
bin="$(swift build -c release --show-bin-path)/diffuse"
run="runs/basic-unet-$(date +%Y%m%d-%H%M%S)"
"$bin" train --model basic-unet --output "$run" "$@"
# Sample on the device training used, when one was named.
device=(--device auto)
args=("$@")
for i in "${!args[@]}"; do
  case "${args[$i]}" in
    --device) device=(--device "${args[$((i + 1))]:-auto}") ;;
    --device=*) device=("${args[$i]}") ;;
  esac
done
"$bin" sample "$run" "${device[@]}" --batch-size 64 --output "$run/demo-samples.png" --trajectory "$run/demo-trajectory.png"
echo "pictures: $run/*.png"
