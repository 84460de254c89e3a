#!/usr/bin/env bash
# A bounded load test of `seqrnn serve` on loopback (docs/serving.md): serves RUN_LM (a language
# model) and RUN_CLF (a classifier) from the release binary, then for 1, 8 and 64 concurrent
# clients (tools/loadgen, each client one connection) sends REQUESTS generation requests
# (32 tokens each) and REQUESTS classification requests, printing one JSON line per
# measurement. Bounded: at most REQUESTS requests and 120 s per measurement.
#   tools/load-test.sh runs/ptb-small runs/sst2 [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/.."
lm=${1:?usage: tools/load-test.sh RUN_LM RUN_CLF [REQUESTS]}
clf=${2:?usage: tools/load-test.sh RUN_LM RUN_CLF [REQUESTS]}
requests=${3:-256}
. tools/serve-under-load.sh
start_server --model lm="$lm" --model clf="$clf" --max-queue 1024 --max-batch 64
gen='{"prompt": "the company said", "max_tokens": 32, "seed": 1}'
clf_body='{"inputs": ["a gripping , funny and moving film that never drags"]}'
for c in 1 8 64; do
    echo "generate $( $load "$url/v1/models/lm/generate" "$gen" --concurrency $c --requests "$requests" --duration-s 120 )"
done
for c in 1 8 64; do
    echo "classify $( $load "$url/v1/models/clf/classify" "$clf_body" --concurrency $c --requests "$requests" --duration-s 120 )"
done
