#!/bin/sh
# Takes the README's capture of the full-screen client again: a server on a free port, bob and carol in line mode,
# ana in the full-screen client in a 100x14 tmux window; then the server is killed and ana's last message waits in
# the outbox. Prints the screen. Needs tmux and `cargo build -p palomar` (the debug binary) first.
set -eu
bin=${PALOMAR_BIN:-$(dirname "$0")/../target/debug/palomar}
dir=$(mktemp -d)
trap 'tmux kill-session -t palomar-capture 2>/dev/null || true; kill -9 $server 2>/dev/null || true; rm -rf "$dir"' EXIT
export PALOMAR_PASSWORD=capture-password
"$bin" serve --listen 127.0.0.1:0 --data "$dir/data" >"$dir/serve.log" 2>/dev/null &
server=$!
until grep -q 'listening on' "$dir/serve.log"; do sleep 0.1; done
addr=$(sed -n 's/.*listening on //p' "$dir/serve.log")
chat() { nick=$1; shift; "$bin" chat --plain --server "$addr" --nick "$nick" --home "$dir/$nick" "$@" >/dev/null; }
printf '' | chat bob
printf '' | chat carol
printf '/join garden\n' | chat ana
tmux new-session -d -s palomar-capture -x 100 -y 14 \
    "PALOMAR_PASSWORD=$PALOMAR_PASSWORD '$bin' chat --server $addr --nick ana --home '$dir/ana'"
sleep 2
# Sessions that last a few seconds, so that their presence is announced.
(sleep 1; echo 'morning all!'; sleep 5) | chat bob &
bob=$!
sleep 3
tmux send-keys -t palomar-capture 'hi bob! how was the trip?' Enter
sleep 1
(sleep 1; echo '@ana welcome back — 日本語 works too'; echo '/join garden'; echo 'the tomatoes are in';
    echo 'come and see'; echo '/msg ana are you free later?'; sleep 3) | chat carol
wait $bob
sleep 3
kill -9 $server
sleep 1
tmux send-keys -t palomar-capture 'are you still there?' Enter
sleep 1
tmux capture-pane -t palomar-capture -p
