#!/usr/bin/env bash
# examples/tokio-zmtp: zmtp-core wrapped in tokio. Its tests (against libzmq) run in
# `cargo test --workspace`; here: its docs, its demo, and its promise of fewer than 200 lines
# of code in src/ (non-blank, non-comment lines as rustfmt leaves them).
set -euo pipefail
cd "$(dirname "$0")/.."

RUSTDOCFLAGS="-D warnings" cargo doc -p zmtp-tokio-example --no-deps
timeout 60 cargo run -p zmtp-tokio-example

lines=$(cat examples/tokio-zmtp/src/*.rs | grep -cvE '^\s*(//|$)')
echo "examples/tokio-zmtp/src: $lines lines of code"
if [ "$lines" -ge 200 ]; then
    echo "examples/tokio-zmtp/src has $lines lines of code; the crate promises under 200" >&2
    exit 1
fi
