#!/usr/bin/env bash
# Quick start, in one command: installs and starts the local AWS emulators, creates a stream,
# checks the example config (config/) with `sauna validate` and `sauna doctor`, puts the example
# commands (examples/commands.jsonl) on the stream with `sauna send`, runs `sauna run` with a
# local stand-in for Slack, and shows what was actioned.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/emulators.sh start
eval "$(scripts/emulators.sh env)"
cargo build --quiet --bin sauna

# A fresh stream (and lease table) per run; the example config is copied with its name.
stream="sauna-quickstart-$(date +%s)"
work=.emulators/quickstart
rm -rf "$work" && mkdir -p "$work/config"
sed "s/\"sauna-quickstart\"/\"$stream\"/g" config/kinesis.json > "$work/config/kinesis.json"
cp config/slack.json config/runtime.json "$work/config/"

python3 scripts/fake_slack.py 45800 > "$work/slack.out" 2>&1 &
slack=$!
trap 'kill $slack 2>/dev/null || true' EXIT
.emulators/moto/bin/python scripts/put_commands.py --stream "$stream"

echo "== sauna validate"
target/debug/sauna validate --config-dir "$work/config"
echo "== sauna doctor"
target/debug/sauna doctor --config-dir "$work/config"
echo "== sauna send examples/commands.jsonl"
target/debug/sauna send --config-dir "$work/config" --partition-key channel --tag source=quickstart examples/commands.jsonl
echo "== sauna run (stopped with SIGTERM after 6 s)"
RUST_LOG=${RUST_LOG:-info} target/debug/sauna run --config-dir "$work/config" 2> "$work/sauna.log" &
sauna=$!
sleep 6
kill -TERM $sauna
wait $sauna
echo "== what the stand-in for Slack received"
cat "$work/slack.out"
echo "== outcomes (one line per record)"
grep 'sauna::outcome' "$work/sauna.log" | sed 's/^\[[^]]*\] *//'
echo "== the full log is in $work/sauna.log"
echo "== the emulators keep running for the next try (about 400 MB); stop them with: scripts/emulators.sh stop"
