#!/usr/bin/env bash
# Install everything edgecompile, its tests and its examples need, on Debian/Ubuntu.
# Idempotent: what is already there is skipped.  Needs root (or sudo) for apt-get.
#   Debian: gcc, make, clang, the Arm bare-metal toolchain and QEMU (for Cortex-M targets)
#   PyPI:   torch 2.13.0 (CPU build), then edgecompile itself with its test extras
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

missing=()
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
command -v make >/dev/null || missing+=(make)
command -v clang >/dev/null || missing+=(clang)
command -v arm-none-eabi-gcc >/dev/null || missing+=(gcc-arm-none-eabi)
[ -f /usr/lib/arm-none-eabi/newlib/libc.a ] || missing+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "install.sh: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null; then
    echo "install.sh: installing torch 2.13.0 (CPU build)"
    "$PYTHON" -m pip install -q torch==2.13.0
fi
"$PYTHON" -m pip install -q -e ".[test]"
echo "install.sh: ready ($("$PYTHON" -c 'import edgecompile; print("edgecompile", edgecompile.__version__)'))"
