#!/usr/bin/env bash
# Every test: the whole workspace with the default pure-Rust matrix products, then one extra
# build with the optional features together: Intel oneMKL products (`mkl`; its runtime comes from
# PyPI through tools/install-mkl.sh into target/mkl, once) and data-parallel training (`mpi`;
# Open MPI from Debian through tools/install-mpi.sh), with the library's tests and the
# distributed tests under `mpirun -np 2`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
# The library without its chart and report dependencies, as an embedding program may take it.
cargo check -p seqrnn --no-default-features --lib
SEQRNN_MKL_DIR=$(tools/install-mkl.sh target/mkl)
export SEQRNN_MKL_DIR
tools/install-mpi.sh
features=seqrnn-cli/mkl,seqrnn-cli/mpi
cargo test -p seqrnn --features seqrnn/mkl,seqrnn/mpi
cargo test -p seqrnn-cli --features $features --test distributed
