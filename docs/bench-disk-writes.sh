#!/usr/bin/env bash
# The write-amplification table of BENCHMARKS.md: how many bytes the spawned server writes to disk per
# acknowledged message. It runs `palomar bench --spawn` for 9 s and reads the server's `write_bytes` from
# /proc/PID/io at 4 s and at 8 s, so logins and the last commits are left out.
#   cargo build --release -p palomar
# Usage: docs/bench-disk-writes.sh [load options]   (BIN=the palomar binary, default target/release/palomar)
#   The script sets --spawn, --size 100, --duration 9, --json and --durability full itself; pass the rest.
#   e.g. docs/bench-disk-writes.sh --clients 200 --rooms 100 --senders 100 --in-flight 1
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/palomar}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

"$BIN" bench --spawn --size 100 --duration 9 --json --durability full "$@" >"$OUT" 2>/dev/null &
bench=$!
sleep 4
server=$(pgrep -P "$bench" | head -1)
if [ -z "$server" ]; then
    echo "no server running under the bench (did it fail to start? run it without this script to see)" >&2
    exit 1
fi
written() { awk '/^write_bytes/ {print $2}' "/proc/$server/io"; }
before=$(written)
sleep 4
after=$(written)
wait "$bench"
acked=$(grep -o '"acks_per_sec":[0-9.]*' "$OUT" | head -1 | cut -d: -f2)
awk -v acked="$acked" -v bytes="$((after - before))" 'BEGIN {
    per_sec = bytes / 4
    printf "%.0f acked msg/s; the server wrote %.0f MB/s to disk: %.0f bytes per message\n", acked, per_sec / 1e6, per_sec / acked
}'
