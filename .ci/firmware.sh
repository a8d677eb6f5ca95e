#!/usr/bin/env bash
# Firmware examples (examples/firmware-*, NUCLEO-F429ZI, thumbv7em-none-eabihf): fmt, clippy,
# release builds of each firmware with zmtp and of its baseline (the same firmware with an
# empty protocol loop, `--no-default-features`), and a size table: what zmtp costs in flash
# (text) and RAM (data + bss) beyond the buffers the application chose. Fails if a build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=never
# One target directory for every firmware crate: their dependencies build once.
export CARGO_TARGET_DIR="$root/target/firmware"

rustup target add thumbv7em-none-eabihf >/dev/null
rustup component add rustfmt clippy >/dev/null
if ! command -v size >/dev/null || ! command -v nm >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq binutils >/dev/null
fi
rustc --version

crates=(firmware-board firmware-dealer firmware-sub firmware-curve-dealer firmware-embassy-dealer)
for c in "${crates[@]}"; do
    (cd "examples/$c" && cargo fmt --check)
done
(cd examples/firmware-board && cargo clippy --release --features zmtp -- -D warnings)
for c in firmware-dealer firmware-sub firmware-embassy-dealer; do
    (cd "examples/$c" && cargo clippy --release -- -D warnings &&
        cargo clippy --release --no-default-features -- -D warnings)
done
(cd examples/firmware-curve-dealer && cargo clippy --release -- -D warnings)

out="$CARGO_TARGET_DIR/sizes"
mkdir -p "$out"
bin_dir="$CARGO_TARGET_DIR/thumbv7em-none-eabihf/release"
# build CRATE VARIANT CARGO-ARGS...: builds and keeps the ELF as $out/CRATE.VARIANT.elf
build() {
    local crate=$1 variant=$2
    shift 2
    (cd "examples/$crate" && cargo build --release "$@")
    cp "$bin_dir/zmtp-$crate" "$out/$crate.$variant.elf"
}
for c in firmware-dealer firmware-sub firmware-curve-dealer firmware-embassy-dealer; do
    build "$c" baseline --no-default-features
    build "$c" zmtp
done
build firmware-dealer zmtp-log --features zmtp-log

# Berkeley sizes (text = .vector_table + .text + .rodata; flash = text + data) and the
# application's buffers: the baseline's MEMORY static (TCP, session and queue buffers, and
# the SUB's trie), which the zmtp build has too (firmware-embassy-dealer: inside
# zmtp-embassy's Resources, with the socket's state).
sizes() { size "$1" | awk 'NR == 2 { print $1, $2, $3 }'; }
row() {
    local crate=$1 variant=$2 label=$3
    read -r bt bd bb < <(sizes "$out/$crate.baseline.elf")
    read -r zt zd zb < <(sizes "$out/$crate.$variant.elf")
    local buf
    buf=$(( 16#$(nm -S "$out/$crate.baseline.elf" | awk '$4 ~ /6MEMORY/ { print $2 }') - 1 ))
    printf '| %s | %d / %d | %d / %d | %d / %d | %+d | %+d | %d |\n' "$label" \
        "$zt" "$bt" "$zd" "$bd" "$zb" "$bb" $((zt - bt)) $((zd + zb - bd - bb)) "$buf"
}
echo
echo "Firmware size (bytes; with zmtp / baseline; RAM = data + bss; buffers: in both, in RAM):"
echo
echo '| firmware | text | data | bss | text delta | RAM delta | buffers |'
echo '|---|---|---|---|---|---|---|'
row firmware-dealer zmtp "DEALER, NULL, heartbeats"
row firmware-dealer zmtp-log "DEALER, NULL, zmtp-core defmt logs"
row firmware-sub zmtp "SUB, one topic"
row firmware-curve-dealer zmtp "DEALER, CURVE"
row firmware-embassy-dealer zmtp "DEALER, NULL, heartbeats, on zmtp-embassy"
