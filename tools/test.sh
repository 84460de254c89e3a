#!/usr/bin/env bash
# Every test, from one build of the whole workspace with the optional features on: Intel oneMKL
# products (`mkl`; its runtime comes from PyPI through tools/install-mkl.sh into target/mkl, once)
# and data-parallel training (`mpi`; Open MPI from Debian through tools/install-mpi.sh).
#
# 1. While the two runtimes install in the background, a type check of the library without its
#    default features, as an embedding program may take it.
# 2. The build, compiled by Clippy (clippy-driver as the workspace's compiler wrapper, as
#    `cargo clippy` runs it), so that it also lints every target, warnings denied.
# 3. Every test (doctests included) with the default pure-Rust matrix products: the build takes
#    that route when `SEQRNN_MATMUL=rust` (crates/seqrnn/src/linalg.rs).
# 4. Every test again, from the same binaries, with oneMKL doing the products; the distributed
#    tests run under `mpirun -np 2` in both passes.
# 5. The Python package (tools/test-python.sh): its wheel, built by maturin on the same build
#    (the `ci` profile, the same features, the same lints), in a virtualenv, and its pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
features=seqrnn-cli/mkl,seqrnn-cli/mpi
mkdir -p target
{ tools/install-mkl.sh target/mkl >/dev/null && tools/install-mpi.sh; } >target/install.log 2>&1 &
installing=$!
cargo check -p seqrnn --no-default-features --lib
# The background's output, if it failed; the calls below then try again in the foreground (each
# script holds a lock, and returns at once when its runtime is in place).
wait "$installing" || cat target/install.log >&2
SEQRNN_MKL_DIR=$(tools/install-mkl.sh target/mkl)
export SEQRNN_MKL_DIR
tools/install-mpi.sh
lint=()
if driver=$(command -v clippy-driver); then
    lint=(env RUSTC_WORKSPACE_WRAPPER="$driver" CLIPPY_ARGS=-Dwarnings)
else
    echo "test.sh: no clippy-driver (rustup component add clippy): building without the lints" >&2
fi
# The Python extension (python/) links against the interpreter that loads it, so it has no Rust
# test binary to link: step 5 builds and lints it, and tests it from Python.
tests=("${lint[@]}" cargo test --workspace --exclude seqrnn-python --profile ci --features "$features")
SEQRNN_MATMUL=rust "${tests[@]}" --all-targets
SEQRNN_MATMUL=rust "${tests[@]}" --doc
"${tests[@]}" --all-targets
"${lint[@]}" tools/test-python.sh "$features"
