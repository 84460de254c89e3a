#!/usr/bin/env bash
# Side-by-side language-model throughput: `seqrnn bench lm` and `seqrnn bench layer` against the
# PyTorch and Keras peer scripts of ../shared/peers, 2 threads, one sitting. Run on a quiet
# machine from the repository root after `cargo build --release -p seqrnn-cli`.
#
#   TORCH_PY=/path/to/torch-venv/bin/python KERAS_PY=/path/to/keras-venv/bin/python \
#     tools/bench-peers.sh [OUT_DIR]
#
# The peers are installed outside the repository, e.g.
#   python3 -m venv /tmp/peer-torch && /tmp/peer-torch/bin/pip install torch numpy
#   python3 -m venv /tmp/peer-keras && /tmp/peer-keras/bin/pip install tensorflow-cpu keras numpy
# With SEQRNN_MKL naming a second binary built with `--features mkl` (docs/performance.md), each
# language-model figure of seqrnn is also taken with it, right after the default one.
# With RUN naming a trained language-model run, it is quantized (`seqrnn quantize`) and both are
# timed and scored beside PyTorch's dynamic quantization of the same weights.
# Every figure lands as one JSON file in OUT_DIR (default /tmp/bench-peers); peak resident memory
# comes from `/usr/bin/time -v`.
set -u
S=${SEQRNN:-./target/release/seqrnn}
SM=${SEQRNN_MKL:-}
TORCH_PY=${TORCH_PY:-/tmp/peer-torch/bin/python}
KERAS_PY=${KERAS_PY:-/tmp/peer-keras/bin/python}
D=${PTB:-../shared/data/ptb}
P=${PEERS:-../shared/peers}
OUT=${1:-/tmp/bench-peers}; mkdir -p "$OUT"
rss() { grep "Maximum resident" "$1" | awk '{print $6}'; }
echo "== layers ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))"
for t in 1 2; do for h in 200 650; do for c in lstm gru; do
  $S bench layer --cell $c --hidden $h --layers 2 --batch 20 --seq 35 --threads $t --iterations 20 --json | tee "$OUT/layer-$c$h-$t.json"
done; done; done
for cfg in "lstm 200 100" "gru 200 100" "lstm 650 30" "gru 650 30"; do
  set -- $cfg; c=$1; h=$2; n=$3
  echo "== $c $h ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))"
  /usr/bin/time -v $S bench lm --cell $c --hidden $h --threads 2 --steps $n --json 2>"$OUT/s-$c$h.time" | tee "$OUT/s-$c$h.json"
  if [ -n "$SM" ]; then
    /usr/bin/time -v $SM bench lm --cell $c --hidden $h --threads 2 --steps $n --json 2>"$OUT/m-$c$h.time" | tee "$OUT/m-$c$h.json"
    echo "peak RSS KiB: seqrnn (mkl) $(rss "$OUT/m-$c$h.time")"
  fi
  /usr/bin/time -v "$TORCH_PY" "$P/torch_lm.py" --data "$D" --cell $c --hidden $h --steps $n --threads 2 2>"$OUT/t-$c$h.time" | tee "$OUT/t-$c$h.json"
  echo "peak RSS KiB: seqrnn $(rss "$OUT/s-$c$h.time") torch $(rss "$OUT/t-$c$h.time")"
  if [ "$c$h" != "gru650" ]; then
    /usr/bin/time -v "$KERAS_PY" "$P/keras_lm.py" --data "$D" --cell $c --hidden $h --steps $n --threads 2 2>"$OUT/k-$c$h.time" | tail -n 1 | tee "$OUT/k-$c$h.json"
    echo "peak RSS KiB: keras $(rss "$OUT/k-$c$h.time")"
  fi
  if [ "$h" = "200" ]; then
    "$TORCH_PY" "$P/torch_generate.py" --cell $c --hidden $h --layers 2 --vocab 10000 --tokens 500 --threads 2 | tee "$OUT/g-$c$h.json"
  fi
done
echo "== lstm 200 repeats ($(date +%T))"
for i in 2 3 4 5; do
  $S bench lm --cell lstm --hidden 200 --threads 2 --steps 100 --json | tee "$OUT/s-lstm200-r$i.json"
  if [ -n "$SM" ]; then $SM bench lm --cell lstm --hidden 200 --threads 2 --steps 100 --json | tee "$OUT/m-lstm200-r$i.json"; fi
done
"$TORCH_PY" "$P/torch_lm.py" --data "$D" --cell lstm --hidden 200 --steps 100 --threads 2 | tee "$OUT/t-lstm200-r2.json"
echo "== lstm 200, 1 thread ($(date +%T))"
$S bench lm --cell lstm --hidden 200 --threads 1 --steps 100 --json | tee "$OUT/s-lstm200-1t.json"
if [ -n "$SM" ]; then $SM bench lm --cell lstm --hidden 200 --threads 1 --steps 100 --json | tee "$OUT/m-lstm200-1t.json"; fi
"$TORCH_PY" "$P/torch_lm.py" --data "$D" --cell lstm --hidden 200 --steps 100 --threads 1 | tee "$OUT/t-lstm200-1t.json"
echo "== int8 inference ($(date +%T))"
# seqrnn's int8 weights (`bench lm --int8`) beside PyTorch's quantize_dynamic, random weights.
for cfg in "lstm 200 100" "gru 200 100" "lstm 650 30" "gru 650 30"; do
  set -- $cfg; c=$1; h=$2; n=$3
  $S bench lm --cell $c --hidden $h --threads 2 --steps $n --int8 --json | tee "$OUT/q-$c$h.json"
  "$TORCH_PY" tools/peers/torch_int8.py --cell $c --hidden $h --threads 2 --steps $n 2>/dev/null | tee "$OUT/tq-$c$h.json"
done
# A trained run and its `seqrnn quantize` copy (RUN=runs/ptb-small), and PyTorch's quantization of
# the same weights, with the perplexity of each on the validation split.
if [ -n "${RUN:-}" ]; then
  rm -rf "$OUT/run-int8"; $S quantize --model "$RUN" --out "$OUT/run-int8" --json | tee "$OUT/run-quantize.json"
  for r in "$RUN" "$OUT/run-int8"; do
    $S bench run --model "$r" --threads 2 --json
    $S eval --model "$r" --data "$D" --split valid --threads 2 --json
  done | tee "$OUT/run-bench.json"
  "$TORCH_PY" tools/peers/torch_int8.py --model "$RUN" --data "$D" --split valid --threads 2 2>/dev/null | tee "$OUT/run-torch.json"
fi
echo "== done $(date +%T)"
