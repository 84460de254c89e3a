#!/usr/bin/env bash
# seqrnn's layers from Python against PyTorch's (tools/peers/python_layers.py), one process per
# peer, the two peers' processes in turn, ROUNDS times each; then `import seqrnn`'s time.
# PYTHON must have torch, numpy and seqrnn installed (`pip install ./python`).
#   PYTHON=/path/to/venv/bin/python tools/bench-python.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
rounds=${1:-3}
for cfg in "lstm 200 1" "lstm 650 1" "gru 200 1" "gru 650 1" "lstm 200 2" "gru 650 2"; do
    set -- $cfg
    for _ in $(seq "$rounds"); do
        for peer in torch seqrnn; do
            "$py" tools/peers/python_layers.py --peer "$peer" --cell "$1" --hidden "$2" --layers "$3" \
                --threads 2 --repeat 40 --json
        done
    done
done
for _ in 1 2 3; do
    "$py" -X importtime -c "import seqrnn" 2>&1 | tail -1
done
