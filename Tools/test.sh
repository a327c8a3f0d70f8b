#!/usr/bin/env bash
# The test command: installs what is missing, builds in release (numerics are 15x slower in debug;
# -enable-testing lets the tests that need internals import them), and runs every test.
# CI runs exactly this (.ci/run). Formatting is checked first (Tools/format.sh: .swift-format's rules and
# its 130-character lines).
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/setup.sh
Tools/format.sh --check
swift build -c release -Xswiftc -enable-testing --build-tests
swift test -c release -Xswiftc -enable-testing --skip-build "$@"
