#!/usr/bin/env bash
# Runs the drain benchmark (benches/drain.rs) against local emulators: kinesalite for Kinesis,
# dynalite for the lease table, moto for CloudWatch. Optimised build (cargo's bench profile).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/emulators.sh start
eval "$(scripts/emulators.sh env)"
RUST_LOG=${RUST_LOG:-warn} cargo bench --bench drain "$@"
