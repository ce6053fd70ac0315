#!/usr/bin/env bash
# Install everything edgecompile, its tests and its examples need, on Debian/Ubuntu.
#
#   Debian: gcc, make, clang, the Arm bare-metal toolchain and QEMU (Cortex-M targets),
#           and python3-venv when the system Python cannot make a virtual environment
#   Python: a project virtual environment .venv/ in this clone (unless one is already
#           active, or PYTHON names an interpreter to use as it is), holding torch 2.13.0
#           (the CPU build) and edgecompile with its test extras, from pyproject.toml alone
#
# Works with only the system Python: nothing is pip-installed into it (PEP 668).
# Idempotent: what is already there is skipped.  Needs root (or sudo) for apt-get.
# Environment: EC_VENV=DIR puts the environment elsewhere (CI uses a fresh one).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
apt_updated=0
apt_install() {
    echo "install.sh: installing Debian packages: $*"
    if [ $apt_updated = 0 ]; then $SUDO apt-get update -q; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$@"
}

missing=()
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
command -v make >/dev/null || missing+=(make)
command -v clang >/dev/null || missing+=(clang)
command -v arm-none-eabi-gcc >/dev/null || missing+=(gcc-arm-none-eabi)
[ -f /usr/lib/arm-none-eabi/newlib/libc.a ] || missing+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

# The interpreter: an active virtual environment, an explicit PYTHON, or .venv/ here.
source scripts/python.sh
if [ -n "${EC_VENV:-}" ] && [ ! -x "$PY" ]; then
    BASE=$(command -v python3 || true)
    [ -n "$BASE" ] || { apt_install python3; BASE=$(command -v python3); }
    # Debian splits venv/ensurepip out of the interpreter package.
    if ! "$BASE" -c 'import venv, ensurepip' 2>/dev/null; then
        ver=$("$BASE" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        apt_install "python$ver-venv" || apt_install python3-venv
    fi
    echo "install.sh: creating the virtual environment $EC_VENV (from $BASE)"
    "$BASE" -m venv "$EC_VENV"
fi
echo "install.sh: Python environment: $("$PY" -c 'import sys; print(sys.prefix)')"

if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null; then
    echo "install.sh: installing torch 2.13.0 (CPU build)"
    "$PY" -m pip install -q torch==2.13.0
fi
# edgecompile itself, linked to this clone, with what pyproject.toml declares (skipped when this
# environment already holds it from the same pyproject.toml).
stamp="$("$PY" -c 'import sys; print(sys.prefix)')/.edgecompile-installed"
want="$root $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$PY" -c 'import edgecompile' 2>/dev/null; then
    "$PY" -m pip install -q -e ".[test]"
    echo "$want" > "$stamp"
fi
bindir=$(dirname "$PY")
echo "install.sh: ready ($("$PY" -c 'import edgecompile; print("edgecompile", edgecompile.__version__)') in $("$PY" -c 'import sys; print(sys.prefix)'))"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$bindir/edgecompile" ]; then
    echo "install.sh: run the CLI as $bindir/edgecompile, or first: source $bindir/activate"
fi
