#!/usr/bin/env bash
# Mixed valid and invalid traffic against `seqrnn serve` for SECONDS (docs/serving.md): seeded
# generation and classification whose every answer must equal the first one (itself the
# library's, as the serve tests check), and malformed JSON, unknown models and fields, too many
# tokens and wrong routes, each of which must get its error status. The server's resident memory
# is sampled every 10 s. Prints each client group's tally (an error is a wrong status or body)
# and the memory samples.
#   tools/soak-test.sh runs/ptb-small runs/sst2 [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
lm=${1:?usage: tools/soak-test.sh RUN_LM RUN_CLF [SECONDS]}
clf=${2:?usage: tools/soak-test.sh RUN_LM RUN_CLF [SECONDS]}
secs=${3:-600}
. tools/serve-under-load.sh
start_server --model lm="$lm" --model clf="$clf" --max-tokens 64
gen='{"prompt": "the company said", "max_tokens": 16, "seed": 3}'
cls='{"inputs": ["a gripping film", "dull and far too long"]}'
want_gen=$(curl -s "$url/v1/models/lm/generate" -d "$gen")
want_cls=$(curl -s "$url/v1/models/clf/classify" -d "$cls")
n=100000000
run() { "$load" "$@" --requests $n --duration-s "$secs"; }
clients=()
echo "generate $(run "$url/v1/models/lm/generate" "$gen" --concurrency 4 --expect "$want_gen")" &
clients+=($!)
echo "classify $(run "$url/v1/models/clf/classify" "$cls" --concurrency 2 --expect "$want_cls")" &
clients+=($!)
echo "bad-json $(run "$url/v1/models/lm/generate" '{"prompt": ' --concurrency 1 --status 400)" &
clients+=($!)
echo "unknown-model $(run "$url/v1/models/nope/generate" "$gen" --concurrency 1 --status 404)" &
clients+=($!)
echo "unknown-field $(run "$url/v1/models/lm/generate" '{"prompt": "a", "x": 1}' --concurrency 1 --status 400)" &
clients+=($!)
echo "too-many-tokens $(run "$url/v1/models/lm/generate" '{"prompt": "a", "max_tokens": 65}' --concurrency 1 --status 400)" &
clients+=($!)
echo "wrong-task $(run "$url/v1/models/clf/generate" "$gen" --concurrency 1 --status 400)" &
clients+=($!)
for _ in $(seq 0 10 "$secs"); do
    echo "rss_kb $(awk '/VmRSS/ {print $2}' /proc/$server/status) at $(date +%s)"
    sleep 10
done
# The clients only: a bare `wait` would also wait for the server.
wait "${clients[@]}"
kill -0 $server && echo "server alive after ${secs} s"
