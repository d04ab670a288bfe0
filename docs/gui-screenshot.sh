#!/usr/bin/env bash
# Regenerates docs/gui.png: the desktop client signed in to a real local server, under a virtual X display,
# while two line-mode clients talk in the same rooms. Needs Xvfb, xdotool and ImageMagick's `import`
# (Debian: apt-get install xvfb xdotool imagemagick libgl1-mesa-dri), and the two binaries built:
#   cargo build -p palomar -p palomar-gui
# Usage: docs/gui-screenshot.sh [OUT.png]   (BIN=dir of the binaries, default target/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/debug}
OUT=${1:-docs/gui.png}
S=$(mktemp -d)
export DISPLAY=${SCREENSHOT_DISPLAY:-:77} XDG_CONFIG_HOME=$S/config LIBGL_ALWAYS_SOFTWARE=1
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$S"; }
trap cleanup EXIT

Xvfb "$DISPLAY" -screen 0 1100x700x24 -nolisten tcp >/dev/null 2>&1 & pids+=($!)
"$BIN/palomar" serve --listen 127.0.0.1:0 --data "$S/data" >"$S/serve.log" 2>&1 & pids+=($!)
until grep -q 'fingerprint' "$S/serve.log"; do sleep 0.2; done
ADDR=$(grep -o 'listening on [0-9.:]*' "$S/serve.log" | cut -d' ' -f3)
FP=$(grep -o 'SHA256:[0-9a-f]*' "$S/serve.log")

chat() { PALOMAR_PASSWORD="$1-pw" "$BIN/palomar" chat --plain --nick "$1" --server "$ADDR" --home "$S/$1"; }
printf '' | chat dave >/dev/null
mkfifo "$S/bob.in" "$S/eve.in"
chat bob <"$S/bob.in" >/dev/null 2>&1 & pids+=($!)
exec 3>"$S/bob.in"
chat eve <"$S/eve.in" >/dev/null 2>&1 & pids+=($!)
exec 4>"$S/eve.in"

# Trusted beforehand, as `palomar chat` would have pinned it: the window opens on the sign-in form.
"$BIN/palomar" trust --home "$S/ana" --server "$ADDR" --fingerprint "$FP" >/dev/null
"$BIN/palomar-gui" --server "$ADDR" --nick ana --home "$S/ana" >"$S/gui.log" 2>&1 & pids+=($!)
until xdotool search --name '^Palomar$' >/dev/null 2>&1; do sleep 0.3; done
sleep 2
WIN=$(xdotool search --name '^Palomar$' | head -1)
xdotool windowfocus "$WIN"
xdotool mousemove --window "$WIN" 490 310 click 1 # the password field
sleep 0.5
type_line() { xdotool type --delay 15 "$1"; xdotool key Return; sleep "${2:-0.8}"; }
# ana's first sign-in from this home: the password, then Tab to its confirmation.
xdotool type --delay 15 'ana-pw'; xdotool key Tab
type_line 'ana-pw' 3
type_line '/join garden'
type_line '/join lobby'
echo "morning all! who is up for the release retro at 3?" >&3; sleep 1
echo "/join garden" >&4; sleep 0.5
echo "the tomatoes are finally red" >&4
echo "and someone left the gate open again" >&4
echo "/msg ana lunch after the retro?" >&4; sleep 0.5
echo "/join lobby" >&4; sleep 0.5
echo "ana: the new build is on the test server, can you have a look before 3?" >&4; sleep 1
type_line 'sure, looking at it now. The reconnect banner finally counts down properly.' 1
printf 'back in five\n' | chat dave >/dev/null; sleep 1
echo "/away weeding the tomatoes" >&4; sleep 0.5
echo "great, see you all at 3 then" >&3; sleep 1.5
xdotool mousemove --window "$WIN" 975 635
sleep 1
import -window "$WIN" "$OUT"
echo "saved $OUT"
