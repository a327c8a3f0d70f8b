#!/usr/bin/env bash
# Issue 14's promise that MPI stays optional: the package builds without the MPI trait (in its own
# scratch folder, so the tested build is untouched), and that build, started as 2 processes by
# mpirun, refuses in one line with exit 2 instead of training twice alone. .ci/run runs this after
# the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=.build/without-mpi
swift build --product diffuse --scratch-path "$scratch"
bin="$scratch/debug/diffuse"
# Read whole before searching: `grep -q` stops at the match, and a line printed after it would
# then end `diffuse devices` with SIGPIPE (exit 141 under pipefail).
devices=$("$bin" devices)
grep -q "mpi: not in this build" <<< "$devices"
if ! command -v mpirun > /dev/null; then
  echo "built without MPI; no mpirun here to check the refusal"
  exit 0
fi
set +e
err=$(mpirun --allow-run-as-root --oversubscribe -np 2 "$bin" train --max-steps 1 --output "$scratch/run" 2>&1 >/dev/null)
status=$?
set -e
if [ "$status" -eq 0 ] || ! grep -q "built without MPI" <<< "$err"; then
  echo "expected a refusal from a build without MPI under mpirun; got status $status:" >&2
  echo "$err" >&2
  exit 1
fi
[ ! -e "$scratch/run" ] || { echo "the refused run left $scratch/run" >&2; exit 1; }
echo "without MPI: builds, and under mpirun says: $(grep -m1 'built without MPI' <<< "$err")"
