# Sourced by tools/load-test.sh and tools/soak-test.sh: builds the release binary and the load
# generator, starts `seqrnn serve` on a free loopback port with the flags given, and sets
#   url     the server's address,
#   server  its process id (stopped with SIGTERM when the calling script exits),
#   load    the load generator (tools/loadgen).
start_server() {
    cargo build --release -q -p seqrnn-cli
    cargo build --release -q --manifest-path tools/loadgen/Cargo.toml
    load=tools/loadgen/target/release/loadgen
    server_log=$(mktemp)
    target/release/seqrnn serve --port 0 "$@" >"$server_log" &
    server=$!
    trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$server_log"' EXIT
    for _ in $(seq 100); do grep -q listening "$server_log" && break; sleep 0.1; done
    url=$(grep -o 'http://[0-9.:]*' "$server_log")
}
