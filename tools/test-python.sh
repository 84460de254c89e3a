#!/usr/bin/env bash
# The Python package's tests (python/tests): builds the wheel with maturin, installs it into a
# virtualenv under target/ (made here, with maturin, numpy, pytest and ONNX Runtime from PyPI),
# and runs pytest. Called by tools/test.sh after the Rust tests, with the features of its build
# (`tools/test-python.sh seqrnn-cli/mkl,seqrnn-cli/mpi`), so that the wheel's build, in the same
# `ci` profile, reuses every dependency that build compiled. Alone, with no argument, it builds
# the default features (a first run compiles the dependencies, a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
features=${1:-}
venv=target/python-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check "maturin>=1.9,<2" "numpy>=1.21" "pytest>=7" \
    "onnxruntime>=1.16"
rm -rf target/wheels
"$venv/bin/maturin" build --profile ci -m python/Cargo.toml ${features:+--features "$features"} \
    --out target/wheels --auditwheel skip -i "$venv/bin/python" --quiet
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps target/wheels/seqrnn-*.whl
# The command line of the same build, for the tests that compare with it; oneMKL's runtime for a
# wheel built with the `mkl` feature.
export SEQRNN_BIN=$PWD/target/ci/seqrnn
export LD_LIBRARY_PATH=${SEQRNN_MKL_DIR:+$SEQRNN_MKL_DIR:}${LD_LIBRARY_PATH:-}
# From outside the source folder, so that `import seqrnn` is the installed wheel.
cd python/tests
"$OLDPWD/$venv/bin/python" -m pytest -q -p no:cacheprovider .
