#!/usr/bin/env bash
# The test command: installs what is missing, builds in release (numerics are 15x slower in debug;
# -enable-testing lets the tests that need internals import them), and runs every test.
# CI runs exactly this (.ci/run). Formatting is checked first (Tools/format.sh: .swift-format's rules and
# its 130-character lines).
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/setup.sh
Tools/format.sh --check
# With Open MPI installed (setup.sh installs it), the MPI trait: the data-parallel tests run under mpirun.
TRAITS=()
if pkg-config --exists ompi 2>/dev/null; then TRAITS=(--traits MPI); fi
swift build -c release -Xswiftc -enable-testing --build-tests "${TRAITS[@]}"
swift test -c release -Xswiftc -enable-testing --skip-build "${TRAITS[@]}" "$@"
