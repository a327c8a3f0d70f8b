#!/usr/bin/env bash
# Packs what Tools/gpu-check.sh needs on a GPU machine that has PyTorch with CUDA but no Swift and
# no Debian packages: the release `diffuse` and test binaries, every shared library they load
# (glibc and its loader included, so the host's own libraries never mix in; libOpenCL.so.1 is the
# ICD loader), and the diffusers wheel. Writes .device/gpu-bundle.tar.xz and prints its size: the
# device runner carries 64 MiB with the working tree (22 MB), so the bundle must stay under 40 MiB.
#   Tools/gpu-bundle.sh            build (release, with tests) and pack
set -euo pipefail
cd "$(dirname "$0")/.."
# Without the MPI trait: the GPU machine has no Open MPI, and one process is what it checks.
swift build -c release -Xswiftc -enable-testing --build-tests
bundle=.device/bundle
rm -rf "$bundle" .device/gpu-bundle.tar.xz
mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/wheels"
cp .build/release/diffuse .build/release/DiffusePackageTests.xctest "$bundle/bin/"
# The loader and every library either binary names, resolved as this machine resolves them, and
# CLBlast (dlopen'ed by DIFFUSE_GEMM_KERNEL=clblast, which gpu-check.sh measures) with its own.
clblast=/usr/lib/x86_64-linux-gnu/libclblast.so.1
test -e "$clblast" || { echo "gpu-bundle: $clblast is missing (apt-get install libclblast1)" >&2; exit 1; }
for binary in "$bundle"/bin/* "$clblast"; do
    ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
    [ "$binary" != "$clblast" ] || echo "$clblast"
done | sort -u | while read -r library; do
    cp -L "$library" "$bundle/lib/"
done
test -e "$bundle/lib/ld-linux-x86-64.so.2" || { echo "gpu-bundle: no ld-linux-x86-64.so.2 in ldd's list" >&2; exit 1; }
test -e "$bundle/lib/libOpenCL.so.1" || { echo "gpu-bundle: libOpenCL.so.1 is not linked" >&2; exit 1; }
# Symbols are not needed to run; stripping takes the binaries from 28 MB to 7 MB.
strip "$bundle"/bin/*
strip --strip-unneeded "$bundle"/lib/*.so* 2>/dev/null || true
# The GPU machine's Python (3.12) has torch, numpy, Pillow, huggingface_hub, safetensors, regex and
# requests (.library/device/KINDS.md); diffusers and importlib_metadata travel, both pure Python.
python=${PYTHON:-python3}
"$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$bundle/wheels" diffusers importlib_metadata
XZ_OPT=-9e tar -C .device -cJf .device/gpu-bundle.tar.xz bundle
rm -rf "$bundle"
size=$(stat -c %s .device/gpu-bundle.tar.xz)
echo "gpu-bundle: .device/gpu-bundle.tar.xz, $((size / 1048576)) MiB (commit $(git rev-parse --short HEAD))"
if [ "$size" -gt $((40 * 1048576)) ]; then
    echo "gpu-bundle: over the 40 MiB left beside the working tree in the device runner's 64 MiB" >&2
    exit 1
fi
