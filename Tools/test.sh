#!/usr/bin/env bash
# The test command: installs what is missing, builds in release (numerics are 15x slower in debug),
# and runs every test. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/setup.sh
swift build -c release --product diffuse
swift test -c release "$@"
