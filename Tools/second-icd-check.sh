#!/usr/bin/env bash
# The OpenCL tests on a second OpenCL implementation: Intel's CPU runtime (its own compiler, not
# PoCL's), taken from PyPI (intel-opencl-rt, tbb, intel-cmplr-lib-rt: ~300 MB, kept under
# .device/intel-opencl) and registered as the only ICD for the run. Every kernel is then built by a
# second compiler and run by a second runtime, and the GPU kernels are forced on it as on PoCL: a
# kernel that only PoCL accepts, or a result that only PoCL's scheduling gives, fails here before
# it fails on a lent GPU. Needs the test build (Tools/test.sh, or swift build -c release
# -Xswiftc -enable-testing --build-tests) and pip.
#   Tools/second-icd-check.sh [swift test filter, default OpenCLTests]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
filter=${1:-OpenCLTests}
dir="$root/.device/intel-opencl"
python=${PYTHON:-python3}
mkdir -p "$dir/wheels" "$dir/vendors"
if ! ls "$dir"/wheels/intel_opencl_rt-*.whl >/dev/null 2>&1; then
    "$python" -m pip download --quiet --no-deps intel-opencl-rt tbb intel-cmplr-lib-rt -d "$dir/wheels" || {
        echo "second-icd-check: could not download Intel's OpenCL runtime from PyPI (pip download intel-opencl-rt)" >&2
        exit 1
    }
fi
if [ ! -d "$dir/x" ]; then
    for wheel in "$dir"/wheels/*.whl; do "$python" -m zipfile -e "$wheel" "$dir/x"; done
fi
runtime=$(dirname "$(find "$dir/x" -name 'libintelocl.so' | head -1)")
[ -n "$runtime" ] || { echo "second-icd-check: libintelocl.so is not in the wheels under $dir/wheels" >&2; exit 1; }
libraries=$(find "$dir/x" -name 'lib*.so*' -printf '%h\n' | sort -u | paste -sd:)
echo "$runtime/libintelocl.so" > "$dir/vendors/intel-cpu.icd"
export OCL_ICD_VENDORS="$dir/vendors"
export LD_LIBRARY_PATH="$libraries${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DIFFUSE_CACHE_DIR="$dir/cache"
export DIFFUSE_REQUIRE_OPENCL=1
.build/release/diffuse devices
swift test -c release -Xswiftc -enable-testing --skip-build --filter "$filter"
