#!/usr/bin/env bash
# MSRV: the workspace's rust-version (Cargo.toml) really builds zmtp-core (host and
# thumbv7em-none-eabihf, with PLAIN and CURVE) and zmtp-std. Installs that toolchain itself.
# A dependency update that needs a newer Rust fails here: pin the dependency, or raise
# rust-version and say why in Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
# Its own target directory: builds of two toolchains in one would keep evicting each other.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/msrv"

msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
test -n "$msrv" || { echo "no rust-version in Cargo.toml" >&2; exit 1; }
case "$msrv" in *.*.*) ;; *) msrv="$msrv.0" ;; esac
echo "MSRV $msrv"
rustup toolchain install "$msrv" --profile minimal --no-self-update >/dev/null
rustup target add thumbv7em-none-eabihf --toolchain "$msrv" >/dev/null

cargo "+$msrv" check --locked -p zmtp-core --features plain,curve
cargo "+$msrv" check --locked -p zmtp-core --features plain,curve --target thumbv7em-none-eabihf
cargo "+$msrv" check --locked -p zmtp-core --no-default-features --target thumbv7em-none-eabihf
cargo "+$msrv" check --locked -p zmtp-std
