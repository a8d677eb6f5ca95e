#!/usr/bin/env bash
# zmtp-std's one `unsafe` module (owned.rs: the memory lent to zmtp-core, per socket and per
# connection) under Miri, with Stacked Borrows and with Tree Borrows. Needs nightly + miri;
# the first run builds the test dependencies for Miri (several minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup toolchain install nightly --profile minimal --component miri >/dev/null
cargo +nightly miri setup >/dev/null
MIRIFLAGS="-Zmiri-disable-isolation" \
    cargo +nightly miri test -p zmtp-std --lib owned::
MIRIFLAGS="-Zmiri-disable-isolation -Zmiri-tree-borrows" \
    cargo +nightly miri test -p zmtp-std --lib owned::
