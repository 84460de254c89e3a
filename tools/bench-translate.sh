#!/usr/bin/env bash
# Side-by-side translation throughput: `seqrnn translate` against the PyTorch peer
# (../shared/peers/torch_seq2seq.py, the same model on the same pieces), 2 threads, one sitting.
# Run on a quiet machine from the repository root after `cargo build --release -p seqrnn-cli`,
# with RUN a trained Multi30k run (docs/translation.md):
#
#   TORCH_PY=/path/to/torch-venv/bin/python tools/bench-translate.sh RUN [OUT_DIR]
#
# The peer needs `torch`, `tokenizers` and `safetensors` in its virtualenv (outside the
# repository). Figures:
# - training: 200 steps of 64 sentence pairs from fresh weights; seqrnn's target pieces per second
#   come from `metrics.csv` (all 200 steps), the peer's after 5 warm-up steps;
# - decoding: the 1,000 test sentences with beam 5 and RUN's weights (the peer loads
#   RUN/model.safetensors), wall time of `translate run`, the peer's decode loop; both
#   translations are written to OUT_DIR and compared.
set -eu
S=${SEQRNN:-./target/release/seqrnn}
TORCH_PY=${TORCH_PY:-/tmp/peer-torch/bin/python}
D=${MULTI30K:-../shared/data/multi30k}
P=${PEERS:-../shared/peers}
RUN=$1
OUT=${2:-/tmp/bench-translate}; mkdir -p "$OUT"
echo "== seqrnn training ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))"
$S translate train --data "$D" --src de --tgt en --out "$OUT/train-run" --force --threads 2 \
  --epochs 1 --max-steps 200 --beam 1 --json > "$OUT/seqrnn-train.json" 2> /dev/null
tail -n 1 "$OUT/train-run/metrics.csv" | cut -d, -f5 | sed 's/^/seqrnn target pieces per s: /'
echo "== seqrnn decoding ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))"
t0=$(date +%s.%N)
$S translate run --model "$RUN" --input "$D/test_2016_flickr.de" --beam 5 --threads 2 > "$OUT/seqrnn-hyp.txt"
t1=$(date +%s.%N)
echo "seqrnn sentences per s: $(echo "1000 / ($t1 - $t0)" | bc -l)"
echo "== PyTorch ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))"
"$TORCH_PY" "$P/torch_seq2seq.py" --run "$RUN" --data "$D" --steps 200 --decode 1000 --beam 5 \
  --threads 2 --load --hyp_out "$OUT/torch-hyp.txt" | tee "$OUT/torch.json"
echo "translations that differ: $(diff "$OUT/seqrnn-hyp.txt" "$OUT/torch-hyp.txt" | grep -c '^<' || true) of 1000"
