#!/usr/bin/env bash
# zmtp-embassy: builds for the microcontroller target, lints, and the host test of embassy-net
# on a TAP device (in a network namespace the test creates and removes) against libzmq.
# The same for the plain smoltcp adapter on a TAP (smoltcp_tap).
# Fails loudly when the TAP tests cannot run (they need root, iproute2 and /dev/net/tun).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ip >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get install -y iproute2 || (apt-get update && apt-get install -y iproute2)) >/dev/null
  fi
fi
command -v ip >/dev/null || { echo "embassy.sh: iproute2 (ip) is required" >&2; exit 1; }
[ -c /dev/net/tun ] || { echo "embassy.sh: /dev/net/tun is required (TAP devices)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "embassy.sh: the TAP test needs root (network namespaces)" >&2; exit 1; }

echo "-- thumbv7em-none-eabihf builds"
cargo build -p zmtp-embassy --target thumbv7em-none-eabihf
cargo build -p zmtp-embassy --target thumbv7em-none-eabihf --features defmt,plain,curve
cargo build -p zmtp-embassy --target thumbv7em-none-eabihf --no-default-features --features smoltcp,medium-ip
# PPP/TUN links (no Ethernet) with IPv6.
cargo build -p zmtp-embassy --target thumbv7em-none-eabihf --no-default-features --features embassy,medium-ip,ipv6
for f in "" "--features defmt,plain,curve,smoltcp,ipv6" "--no-default-features --features smoltcp,medium-ip"; do
  # shellcheck disable=SC2086
  cargo clippy -p zmtp-embassy --target thumbv7em-none-eabihf $f -- -D warnings
done

echo "-- host: clippy, docs, loopback tests"
cargo clippy -p zmtp-embassy -p zmtp-embassy-hosttest --all-targets --features zmtp-embassy/log,zmtp-embassy/smoltcp -- -D warnings
# The TAP tests are `test = false` (outside `cargo test --workspace`): --all-targets skips them.
cargo clippy -p zmtp-embassy-hosttest --test libzmq_tap --test smoltcp_tap -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p zmtp-embassy --no-deps --features smoltcp,plain,curve
cargo test -p zmtp-embassy --features smoltcp
cargo test -p zmtp-embassy-hosttest --test smoltcp_loopback

echo "-- embassy-net over TAP against libzmq (network namespace)"
cargo test -p zmtp-embassy-hosttest --test libzmq_tap

echo "-- plain smoltcp (poll loop) over TAP against libzmq (network namespace)"
cargo test -p zmtp-embassy-hosttest --test smoltcp_tap
