#!/usr/bin/env bash
# The whole GPU check in one command, for an NVIDIA machine with PyTorch (CUDA) and no Swift:
#   1. unpacks .device/gpu-bundle.tar.xz (made here by Tools/gpu-bundle.sh) and runs its binaries
#      through their own loader and libraries;
#   2. registers NVIDIA's OpenCL ICD (libnvidia-opencl.so.1) for the bundled ICD loader;
#   3. lists the devices, runs the OpenCL kernel tests and the fixture/parity tests (OpenCLTests,
#      DiffusionTests) on the GPU;
#   4. runs `diffuse bench` (BasicUNet training, UNet2DModel training at batch 64, the sampling
#      step at batch 8, a 1024^3 GEMM) beside the same workloads in PyTorch CUDA eager, the GEMM
#      and UNet2DModel training again with CLBlast as the GEMM (issue 9's evaluation) and with 8x8
#      outputs per work-item in gemm_tiled/conv_tiled, and the per-kernel profile;
#   5. writes $OUT/gpu-check.md (the table with ratios, and what failed) and the raw outputs.
# Each stage has a time limit so the whole stays within 8 minutes; a failing stage is reported and
# the next still runs. GPU_CHECK_LOCAL=1 runs the same stages here (PoCL, PyTorch on the CPU) to
# check the script itself.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$root/.device/out}
mkdir -p "$OUT"
report="$OUT/gpu-check.md"
local_run=${GPU_CHECK_LOCAL:-0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
note() { echo "$*" | tee -a "$report"; }
: > "$report"
note "# Diffuse GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
note ""

tar -C "$work" -xJf "$root/.device/gpu-bundle.tar.xz" || { note "no bundle: run Tools/gpu-bundle.sh first"; exit 1; }
bundle="$work/bundle"
run() { "$bundle/lib/ld-linux-x86-64.so.2" --library-path "$bundle/lib" "$@"; }

if [ "$local_run" != 1 ]; then
    icd=$( (ldconfig -p 2>/dev/null | awk '/libnvidia-opencl\.so\.1/ { print $NF; exit }') || true)
    if [ -z "$icd" ]; then
        icd=$(find /usr/lib /usr/lib64 /usr/local/nvidia /usr/local/cuda /lib -name 'libnvidia-opencl.so.1*' \
              2>/dev/null | head -1)
    fi
    if [ -z "$icd" ]; then
        note "NVIDIA's OpenCL library (libnvidia-opencl.so.1) is not on this machine; nvidia-smi says:"
        nvidia-smi -L 2>&1 | tee -a "$report"
        exit 1
    fi
    mkdir -p "$work/vendors"
    echo "$icd" > "$work/vendors/nvidia.icd"
    export OCL_ICD_VENDORS="$work/vendors"
    note "NVIDIA ICD: $icd"
    torch_device=cuda
    device_flag=opencl
else
    torch_device=cpu
    device_flag=opencl
fi
export DIFFUSE_CACHE_DIR="$work/cache" DIFFUSE_FIXTURES="$root/Tests/Fixtures" DIFFUSE_REQUIRE_OPENCL=1

note ""
note "## Devices"
note '```'
timeout 60 "$bundle/lib/ld-linux-x86-64.so.2" --library-path "$bundle/lib" "$bundle/bin/diffuse" devices 2>&1 \
    | tee -a "$report" || status=1
note '```'

# PyTorch with diffusers: use what is installed, else the bundled wheels (pure Python) in a folder
# put on PYTHONPATH (the machine's own torch, numpy and Pillow stay in use).
python=${PYTHON:-python3}
if ! "$python" -c "import diffusers" 2>/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$work/py" \
        "$bundle"/wheels/*.whl 2>&1 | tail -3
    export PYTHONPATH="$work/py${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$python" -c "import torch, diffusers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'diffusers', diffusers.__version__)" 2>&1 | tee -a "$report"; then
    note "PyTorch with diffusers is not importable; the bench runs without the PyTorch column"
fi

note ""
note "## Tests (OpenCLTests, DiffusionTests)"
tests=$(run "$bundle/bin/DiffusePackageTests.xctest" --list-tests 2>/dev/null \
        | grep -E '^(OpenCLTests|DiffusionTests)\.' | paste -sd, -)
timeout 300 "$bundle/lib/ld-linux-x86-64.so.2" --library-path "$bundle/lib" \
    "$bundle/bin/DiffusePackageTests.xctest" "$tests" > "$OUT/tests.txt" 2>&1
code=$?
grep -E "error:|Executed [0-9]+ tests" "$OUT/tests.txt" | tail -15 | tee -a "$report"
[ $code -eq 0 ] || { note "tests exited $code (see tests.txt)"; status=1; }

note ""
note "## Bench beside PyTorch ($torch_device eager)"
note '```'
timeout 150 "$bundle/lib/ld-linux-x86-64.so.2" --library-path "$bundle/lib" "$bundle/bin/diffuse" bench \
    --device "$device_flag" --gemm --seconds 4 --torch-script "$root/Tools/reference/bench_torch.py" \
    --python "$python" --torch-device "$torch_device" 2>&1 | tee "$OUT/bench.txt" | tee -a "$report" || status=1
note '```'
note ""
note "## CLBlast as the GEMM (DIFFUSE_GEMM_KERNEL=clblast; convolutions stay on conv_tiled)"
note '```'
DIFFUSE_GEMM_KERNEL=clblast timeout 60 "$bundle/lib/ld-linux-x86-64.so.2" --library-path "$bundle/lib" \
    "$bundle/bin/diffuse" bench --device "$device_flag" --gemm --workload unet2d_train --seconds 2 2>&1 \
    | tee "$OUT/bench-clblast.txt" | tee -a "$report" || status=1
note '```'
# The default tiles give each work-item 4x4 outputs from 8 local loads per 16 FMAs, which on NVIDIA
# may be bound by local-memory instructions; 8x8 per work-item (64-item work-groups, the same 64x64
# block) loads 16 per 64 FMAs. Which wins is for the GPU to say.
note ""
note "## 8x8 outputs per work-item (DIFFUSE_GEMM_TILED=8x8x8x8x16; gemm_tiled and conv_tiled)"
note '```'
DIFFUSE_GEMM_TILED=8x8x8x8x16 timeout 60 "$bundle/lib/ld-linux-x86-64.so.2" --library-path "$bundle/lib" \
    "$bundle/bin/diffuse" bench --device "$device_flag" --gemm --workload unet2d_train --seconds 2 2>&1 \
    | tee "$OUT/bench-tiles-8x8.txt" | tee -a "$report" || status=1
note '```'
timeout 90 "$bundle/lib/ld-linux-x86-64.so.2" --library-path "$bundle/lib" "$bundle/bin/diffuse" bench \
    --device "$device_flag" --seconds 2 --profile --json > "$OUT/profile.json" 2> "$OUT/profile.err" || status=1
note ""
note "## Where the time goes (kernels over 2% of a step)"
note '```'
"$python" - "$OUT/profile.json" <<'EOF' 2>&1 | tee -a "$report"
import json, sys
rows = json.load(open(sys.argv[1]))
for workload in dict.fromkeys(r["workload"] for r in rows):
    mine = [r for r in rows if r["workload"] == workload]
    total = sum(r["seconds_per_step"] for r in mine) or 1e-12
    launches = sum(r["launches_per_step"] for r in mine)
    print(f"{workload}: {total * 1e3:.2f} ms of kernels, {launches} launches per step")
    for r in sorted(mine, key=lambda r: -r["seconds_per_step"]):
        if r["seconds_per_step"] / total >= 0.02:
            print(f"  {r['kernel']:32s} {r['launches_per_step']:5d} launches {r['seconds_per_step'] * 1e3:8.3f} ms"
                  f" {100 * r['seconds_per_step'] / total:5.1f}%  {r['flops'] / max(r['seconds_per_step'], 1e-12) / 1e9:9.1f} GFLOP/s")
EOF
note '```'
note ""
note "commit $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown); status $status"
exit $status
