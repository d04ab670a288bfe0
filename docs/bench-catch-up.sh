#!/usr/bin/env bash
# The catch-up row of BENCHMARKS.md: one member returns to N waiting messages. A fresh server (message rate
# limit off) on a temporary directory; `late-1` to `late-RUNS` register and leave; `sender` pipes N lines
# through `palomar chat --json`; then each `late-R` is timed from starting `palomar chat --json --nick late-R`
# until it exits, which it does once it has printed every message the server held at login. Each run has an
# account of its own: the server keeps a member's cursor, so a second run of the same account would resume
# where the first one's saved acknowledgements left it, not at the first message.
#   cargo build --release -p palomar
# Usage: docs/bench-catch-up.sh   (BIN=the palomar binary, default target/release/palomar; N=100000; RUNS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/palomar}
N=${N:-100000}
RUNS=${RUNS:-3}
S=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$S"; }
trap cleanup EXIT

printf '[limits]\nmessages_per_sec_per_user = 0.0\n' >"$S/config.toml"
"$BIN" serve --listen 127.0.0.1:0 --data "$S/data" --config "$S/config.toml" >"$S/serve.log" 2>&1 & pids+=($!)
until grep -q 'fingerprint' "$S/serve.log"; do sleep 0.1; done
ADDR=$(grep -o 'listening on [0-9.:]*' "$S/serve.log" | cut -d' ' -f3)
export PALOMAR_PASSWORD=catch-up-pw

chat() { "$BIN" chat --json --server "$ADDR" --drain-timeout 600 "$@"; }
for run in $(seq 1 "$RUNS"); do chat --nick "late-$run" --home "$S/late-$run" </dev/null >/dev/null; done
seq 1 "$N" | sed 's/^/catch-up message /' | chat --nick sender --home "$S/sender" >/dev/null
echo "$N messages waiting for late-1 to late-$RUNS"

for run in $(seq 1 "$RUNS"); do
    start=$(date +%s%N)
    chat --nick "late-$run" --home "$S/late-$run" </dev/null >"$S/late.out"
    end=$(date +%s%N)
    got=$(grep -c '"event":"message"' "$S/late.out" || true)
    ms=$(((end - start) / 1000000))
    echo "run $run: $got messages in $ms ms: $((got * 1000 / (ms > 0 ? ms : 1))) messages/s"
done
