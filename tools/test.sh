#!/usr/bin/env bash
# Every test, in two builds of the whole workspace that share one build of the dependencies
# (both select every package, so cargo gives the dependencies the same features and reuses them):
#
# 1. the default build: every test (doctests included) with the pure-Rust matrix products;
# 2. the optional features together: Intel oneMKL products (`mkl`; its runtime comes from PyPI
#    through tools/install-mkl.sh into target/mkl, once) and data-parallel training (`mpi`; Open
#    MPI from Debian through tools/install-mpi.sh): every target's tests again with oneMKL doing
#    the products, the distributed tests under `mpirun -np 2` among them. Clippy compiles this
#    build (clippy-driver as the workspace's compiler wrapper, as `cargo clippy` runs it), so it
#    also lints every target with the features on, warnings denied, at no extra build.
#
# In between, a type check of the library without its default features, as an embedding program
# may take it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
cargo check -p seqrnn --no-default-features --lib
SEQRNN_MKL_DIR=$(tools/install-mkl.sh target/mkl)
export SEQRNN_MKL_DIR
tools/install-mpi.sh
lint=()
if driver=$(command -v clippy-driver); then
    lint=(env RUSTC_WORKSPACE_WRAPPER="$driver" CLIPPY_ARGS=-Dwarnings)
else
    echo "test.sh: no clippy-driver (rustup component add clippy): building without the lints" >&2
fi
"${lint[@]}" cargo test --workspace --all-targets --features seqrnn-cli/mkl,seqrnn-cli/mpi
