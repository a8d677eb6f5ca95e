#!/usr/bin/env bash
# The zmtp command-line tool: the release build the README names, and its worked example
# against pyzmq (installed by .ci/run). The tool's own tests (zmtp-cli/tests/cli.rs, against
# libzmq) run with `cargo test --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bin zmtp
zmtp=target/release/zmtp
test -x "$zmtp"

tmp=$(mktemp -d)
pids=()
cleanup() {
    status=$?
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ "$status" -ne 0 ]; then
        # The background zmtp commands' stderr, which says which one failed and why.
        for f in "$tmp"/err "$tmp"/curve_err; do
            [ -s "$f" ] && { echo "--- $f"; cat "$f"; } >&2
        done
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# Waits (at most 20 s) for the `bound EP` line on a stderr file; prints EP.
bound() {
    for _ in $(seq 400); do
        if ep=$(sed -n 's/^bound //p' "$1" 2>/dev/null | head -n1) && [ -n "$ep" ]; then
            echo "$ep"
            return
        fi
        sleep 0.05
    done
    echo "no bound line in $1:" >&2
    cat "$1" >&2
    exit 1
}

# README example 1: zmtp receives what pyzmq pushes.
"$zmtp" recv -t pull -b tcp://127.0.0.1:0 --count 1 --timeout 20000 >"$tmp/out" 2>"$tmp/err" &
recv=$!
pids+=("$recv")
ep=$(bound "$tmp/err")
# pyzmq does not terminate a context at interpreter exit, and only zmq_ctx_term waits for
# queued messages (linger): without close + term the process can exit with "hello" unsent.
python3 -c 'import sys, zmq; c = zmq.Context(); s = c.socket(zmq.PUSH); s.connect(sys.argv[1]); s.send_multipart([b"hello", b"world"]); s.close(linger=20000); c.term()' "$ep"
wait "$recv"
test "$(cat "$tmp/out")" = '["hello","world"]'

# README example 2: a zmtp REQ round trip to a pyzmq REP.
python3 - "$tmp/rep_ep" <<'PY' &
import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.REP)
s.setsockopt(zmq.RCVTIMEO, 20000)
port = s.bind_to_random_port("tcp://127.0.0.1")
open(sys.argv[1] + ".tmp", "w").write(f"tcp://127.0.0.1:{port}")
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.send_multipart([b"re:"] + s.recv_multipart())
s.close(linger=20000)
ctx.term()
PY
pids+=("$!")
for _ in $(seq 400); do [ -s "$tmp/rep_ep" ] && break; sleep 0.05; done
reply=$("$zmtp" req -c "$(cat "$tmp/rep_ep")" --timeout 20000 ping)
test "$reply" = '["re:","ping"]'
# README example 3: CURVE. zmtp receives what a pyzmq CURVE PUSH sends, letting in only
# the client key it was told about.
"$zmtp" keygen >"$tmp/server.keys"
"$zmtp" keygen >"$tmp/client.keys"
key() { sed -n "s/^$1: //p" "$2"; }
ZMTP_CURVE_SECRETKEY=$(key secret "$tmp/server.keys") \
    "$zmtp" recv -t pull -b tcp://127.0.0.1:0 --curve-server \
    --allow-curve-key "$(key public "$tmp/client.keys")" --count 1 --timeout 20000 \
    >"$tmp/curve_out" 2>"$tmp/curve_err" &
recv=$!
pids+=("$recv")
ep=$(bound "$tmp/curve_err")
python3 - "$ep" "$(key public "$tmp/server.keys")" "$(key public "$tmp/client.keys")" \
    "$(key secret "$tmp/client.keys")" <<'PY'
import sys, zmq
ep, server_public, client_public, client_secret = (a.encode() for a in sys.argv[1:])
ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.curve_serverkey, s.curve_publickey, s.curve_secretkey = server_public, client_public, client_secret
s.connect(ep.decode())
s.send_multipart([b"sealed", b"with CURVE"])
s.close(linger=20000)
ctx.term()  # waits (up to the linger) for the handshake and the message to go out
PY
wait "$recv"
test "$(cat "$tmp/curve_out")" = '["sealed","with CURVE"]'
echo "zmtp worked examples against pyzmq: ok"
