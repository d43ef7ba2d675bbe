#!/usr/bin/env bash
# Runs the benchmarks against the local emulators, optimised (cargo's bench profile):
#   benches/drain.rs    throughput: kinesalite for Kinesis, dynalite, moto (dedup off and on)
#   benches/latency.rs  put → action latency, polling against fan-out, on kinesis-mock
# With no arguments both run; `scripts/bench.sh --bench latency` runs one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/emulators.sh start
eval "$(scripts/emulators.sh env)"
if [ $# -eq 0 ]; then set -- --benches; fi
RUST_LOG=${RUST_LOG:-warn} cargo bench "$@"
