#!/usr/bin/env bash
# The project's test command: starts the local AWS emulators (installing them on first use),
# points the AWS SDK at them, and runs every test. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/emulators.sh start
eval "$(scripts/emulators.sh env)"
cargo test "$@"
