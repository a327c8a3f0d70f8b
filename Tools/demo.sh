#!/usr/bin/env bash
# The quick start: installs what is missing, builds in release, trains the tutorial's BasicUNet on
# Fashion-MNIST with the defaults, then samples from it. Extra arguments go to `diffuse train`.
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/setup.sh
swift build -c release --product diffuse
bin="$(swift build -c release --show-bin-path)/diffuse"
run="runs/basic-unet-$(date +%Y%m%d-%H%M%S)"
"$bin" train --model basic-unet --output "$run" "$@"
"$bin" sample "$run" --batch-size 64 --output "$run/demo-samples.png" --trajectory "$run/demo-trajectory.png"
echo "pictures: $run/*.png"
