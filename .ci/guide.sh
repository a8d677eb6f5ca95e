#!/usr/bin/env bash
# The Guide's examples (examples/guide): lint, run every example once (each exits 0 when
# its pattern worked), and the tests (also run by `cargo test --workspace`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo clippy -p zmtp-guide --all-targets -- -D warnings
# Build first, so that the time limit below is for running, not compiling.
cargo build -q -p zmtp-guide --examples
for e in hello weather pipeline pipeline2 identity rtreq rtdealer lpclient rrbroker msgqueue \
         lbbroker asyncsrv spqueue ppqueue majordomo; do
    if [ -f "examples/guide/examples/$e.rs" ]; then
        echo "--- example $e"
        timeout 120 cargo run -q -p zmtp-guide --example "$e" >/dev/null
    fi
done
cargo test -p zmtp-guide
