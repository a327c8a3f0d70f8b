#!/usr/bin/env bash
# Installs the Debian packages Diffuse builds, tests and trains with, when any is missing.
set -euo pipefail
PACKAGES=(libopenblas-dev libpng-dev libjpeg62-turbo-dev zlib1g-dev ocl-icd-opencl-dev opencl-headers pocl-opencl-icd
          dataset-fashion-mnist libcurl4 ca-certificates libopenmpi-dev openmpi-bin pkgconf libclblast1
          chromium)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi
if ! command -v swift >/dev/null 2>&1; then
  echo "error: no Swift toolchain on PATH; install Swift 6 from https://swift.org/install" >&2
  exit 2
fi
