#!/usr/bin/env bash
# Every test: the whole workspace with the default pure-Rust matrix products, then the library's
# tests and lints again with Intel oneMKL products (the `mkl` feature). oneMKL's runtime comes
# from PyPI through tools/install-mkl.sh into target/mkl, once.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
# The library without its chart and report dependencies, as an embedding program may take it.
cargo check -p seqrnn --no-default-features --lib
SEQRNN_MKL_DIR=$(tools/install-mkl.sh target/mkl)
export SEQRNN_MKL_DIR
cargo clippy -p seqrnn -p seqrnn-cli --all-targets --features seqrnn-cli/mkl -- -D warnings
cargo test -p seqrnn --features mkl
