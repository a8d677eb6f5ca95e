#!/usr/bin/env bash
# zmtp-core on a Cortex-M4 under QEMU (mps2-an386): builds examples/qemu-mps2 in release and
# runs it; fails unless it printed its PASS line and exited 0 through semihosting.
set -euo pipefail
cd "$(dirname "$0")/../examples/qemu-mps2"
export CARGO_TERM_COLOR=never

if ! command -v qemu-system-arm >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq qemu-system-arm >/dev/null
fi
qemu-system-arm --version | head -n1
rustup target add thumbv7em-none-eabihf >/dev/null
rustup component add rustfmt clippy >/dev/null

cargo fmt --check
cargo clippy --release -- -D warnings
cargo build --release
bin=target/thumbv7em-none-eabihf/release/zmtp-qemu-mps2
# Informative only: flash (text) and RAM (data + bss) of the firmware.
size "$bin" || true

# The runner of .cargo/config.toml, with a time limit.
status=0
out=$(timeout 60 qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
    -semihosting-config enable=on,target=native -kernel "$bin") || status=$?
printf '%s\n' "$out"
if [[ $status -ne 0 ]]; then
    echo "qemu-mps2: exit code $status (124: timed out)" >&2
    exit 1
fi
grep -q '^qemu-mps2: PASS' <<<"$out" || { echo "qemu-mps2: no PASS line" >&2; exit 1; }
