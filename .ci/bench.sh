#!/usr/bin/env bash
# zmtp-bench: the harness builds, and every role of it runs once with a handful of messages
# (zmtp-std, libzmq through the zmq crate, raw TCP, zmtp-core CURVE and the system libzmq's
# CURVE through a C tool compiled on the spot). A check that the harness works, not a
# measurement: figures from a CI run mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# The CURVE comparison's libzmq side needs a C compiler and the system libzmq with CURVE.
if ! pkg-config --exists libzmq 2>/dev/null || ! command -v cc >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libzmq3-dev libsodium-dev gcc pkg-config >/dev/null
fi

cargo build -p zmtp-bench
# CI=true makes a missing libzmq/cc fail the run instead of skipping the CURVE part.
CI=true timeout 600 target/debug/zmtp-bench all --smoke
