#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time and prints libFuzzer's final statistics.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      (default: 60 s each, every target)
#
# SANITIZER=address runs under AddressSanitizer; the default is none (the readers are safe
# Rust, so a panic is what there is to find, and uninstrumented runs are several times faster).
# Needs a nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`). The working corpus grows in fuzz/corpus/TARGET (not committed),
# starting from the committed seeds in fuzz/seeds/TARGET; a crash input lands in
# fuzz/artifacts/TARGET: copy it into fuzz/regressions/TARGET, where the stable test
# crates/seqrnn/tests/it/fuzz_regressions.rs replays it on every `cargo test`.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(checkpoint import vocab corpus table labeled keras)
fi
mkdir -p logs
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "seeds/$t"
    echo "== $t: ${secs} s"
    set +e
    cargo +nightly fuzz run --sanitizer "${SANITIZER:-none}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
        2>&1 | tee "logs/$t.log" | grep -E "^(stat::|==|INFO: Done)|crash|panicked|ERROR"
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -ne 0 ]; then
        echo "$t: libFuzzer reported a failure; see fuzz/logs/$t.log and fuzz/artifacts/$t" >&2
        exit 1
    fi
done
