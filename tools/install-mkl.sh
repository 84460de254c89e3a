#!/usr/bin/env bash
# Installs Intel oneMKL's runtime (the `mkl` wheel from PyPI) into a virtual environment and
# prints the folder to give the `mkl` feature as SEQRNN_MKL_DIR:
#
#   export SEQRNN_MKL_DIR=$(tools/install-mkl.sh)
#   cargo build --release -p seqrnn-cli --features mkl
#
# The environment goes to $1 (default: target/mkl). Needs python3 with venv and pip; about
# 1 GB on disk. oneMKL is under the Intel Simplified Software License. Safe to run twice at once:
# a second run waits for the first and then finds the runtime in place.
set -euo pipefail
if command -v flock >/dev/null; then
    exec 9<"$0"
    flock 9
fi
MKL_VERSION=2026.2.0
prefix=${1:-target/mkl}
if ! ls "$prefix"/lib/libmkl_rt.so* >/dev/null 2>&1; then
    python3 -m venv "$prefix" >&2
    "$prefix/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir "mkl==$MKL_VERSION" >&2
fi
ls "$prefix"/lib/libmkl_rt.so* >/dev/null
cd "$prefix/lib" && pwd
