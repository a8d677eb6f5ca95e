#!/usr/bin/env bash
# Fuzz smoke run: builds the cargo-fuzz targets in fuzz/ (nightly, AddressSanitizer) and runs
# each for a short time from the committed seeds with the ZMTP dictionary. Any crash, leak,
# timeout or out-of-memory fails the run, and the failing input is printed as hex (copy it to
# zmtp-core/tests/fuzz_regressions/, see FUZZING.md). Called by .ci/run; runs on its own too:
#
#   bash .ci/fuzz-smoke.sh                        # every target, FUZZ_SMOKE_SECONDS each
#   FUZZ_SMOKE_SECONDS=60 bash .ci/fuzz-smoke.sh session session_pair
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SMOKE_SECONDS:-15}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(greeting frame_header command metadata session session_pair socket session_security)
fi
# Open findings the oracle looks past, by id (FUZZING.md, "Open findings"); each also has an
# input in zmtp-core/tests/fuzz_regressions/open/. None is open now.
export ZMTP_FUZZ_TOLERATE=${ZMTP_FUZZ_TOLERATE-}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz-smoke: installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal ||
    echo "fuzz-smoke: rustup could not install nightly; trying the one present"
fi
cargo +nightly --version
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
cargo fuzz --version

cd fuzz
start=$(date +%s)
cargo +nightly fuzz build
echo "fuzz-smoke: built in $(($(date +%s) - start)) s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  log="$work/$t.log"
  if cargo +nightly fuzz run "$t" "$work/corpus/$t" "seeds/$t" -- \
    -dict=zmtp.dict -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=8192 -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" >"$log" 2>&1; then
    stats=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
    echo "fuzz-smoke: $t ok: ${runs:-?} runs; ${stats:-no final line}"
  else
    failed+=("$t")
    echo "fuzz-smoke: $t FAILED; last lines of its log:"
    grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$log" | tail -n 60
    for a in "$work/artifacts/$t"/*; do
      [ -f "$a" ] || continue
      echo "fuzz-smoke: failing input $(basename "$a") ($(wc -c <"$a") bytes):"
      od -An -tx1 -v "$a" | tr -d ' \n' | fold -w 96
      echo
    done
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-smoke: failures in: ${failed[*]}"
  exit 1
fi
echo "fuzz-smoke: ${#targets[@]} targets clean, $seconds s each, $(($(date +%s) - start)) s in all"
