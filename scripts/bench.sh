#!/usr/bin/env bash
# Runs the benchmarks against the local emulators, optimised (cargo's bench profile):
#   benches/classify.rs CommandParser::classify alone beside a plain parse (no emulator needed)
#   benches/drain.rs    throughput: kinesalite for Kinesis, dynalite, moto (dedup off and on)
#   benches/latency.rs  put → action latency, polling against fan-out, on kinesis-mock
#   benches/process.rs  the `sauna run` binary with the stdout responder: drain CPU, RSS and
#                       wall beside a plain loop; idle shards; 200 shards and 1, 2, 4 workers
# With no arguments all run; `scripts/bench.sh --bench latency` runs one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/emulators.sh install   # a no-op when up to date; writes the emulators' launch files
scripts/emulators.sh start
eval "$(scripts/emulators.sh env)"
if [ $# -eq 0 ]; then set -- --benches; fi
RUST_LOG=${RUST_LOG:-warn} cargo bench "$@"
