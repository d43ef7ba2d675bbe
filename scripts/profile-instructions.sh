#!/usr/bin/env bash
# Where a command's CPU goes, in instructions (valgrind's callgrind): the same count for the
# same binary and input however busy the machine is, so a change of a few percent shows, where
# the benchmarks' seconds move by ±10 % from run to run.
#
# Puts N commands (the benchmarks' shape, ~560 B) on a new 4-shard kinesalite stream, runs
# `sauna run` (this checkout's release build, the stdout responder, dedup off) under callgrind
# until it has printed N lines, then prints the instructions per command of each part.
#
#   scripts/profile-instructions.sh [N]      (default 20000; ~2 minutes under valgrind)
#
# Needs valgrind (Debian's package) and the release build (`cargo build --release`). The
# profile stays in target/callgrind.out for `callgrind_annotate --inclusive=yes`. Under
# valgrind the CPU reports no SHA extensions, so request signing counts more than it costs on a
# machine that has them; idle work (renewals, signal reads) counts per wall second of a run
# that is ~50 times slower, so only the per-command parts below are comparable across runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${1:-20000}
BIN=${SAUNA_BIN:-target/release/sauna}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "$BIN is missing: cargo build --release" >&2; exit 2; }
scripts/emulators.sh start >/dev/null
eval "$(scripts/emulators.sh env)"
export AWS_ENDPOINT_URL_KINESIS=$SAUNA_BENCH_KINESIS_ENDPOINT RUST_LOG=warn
AWS=.emulators/moto/bin/aws

STREAM=profile-$(date +%s)-$$
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
$AWS --region us-east-1 --endpoint-url "$SAUNA_BENCH_KINESIS_ENDPOINT" kinesis create-stream \
  --stream-name "$STREAM" --shard-count 4
sleep 1
cat > "$DIR/kinesis.json" <<EOF
{"schema": "iglu:com.snowplowanalytics.sauna.observers/AmazonKinesisConfig/avro/1-0-0",
 "data": {"enabled": true, "id": "$STREAM", "parameters": {
   "aws": {"accessKeyId": "default", "secretAccessKey": "default"},
   "kinesis": {"region": "us-east-1", "streamName": "$STREAM", "maxRecords": 10000,
               "initialPosition": "TRIM_HORIZON", "initialPositionModifiers": null}}}}
EOF
cat > "$DIR/stdout.json" <<EOF
{"schema": "iglu:rs.sauna.responders/StdoutConfig/avro/1-0-0",
 "data": {"enabled": true, "id": "stdout",
          "parameters": {"commands": ["iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*"]}}}
EOF
cat > "$DIR/runtime.json" <<EOF
{"schema": "iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0", "data": {"dedup": {"enabled": false}}}
EOF
# The benchmarks' commands (benches/common/mod.rs): a Slack send_message with a tag, each with
# an id and a creation time of its own.
python3 - "$N" > "$DIR/commands.jsonl" <<'EOF'
import json, sys, uuid
for i in range(int(sys.argv[1])):
    print(json.dumps({
        "schema": "iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-0",
        "data": {
            "envelope": {"schema": "iglu:com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-0",
                         "data": {"commandId": str(uuid.uuid4()), "whenCreated": "2026-11-26T%02d:%02d:%02dZ" % (i // 3600 % 24, i // 60 % 60, i % 60),
                                  "execution": {"semantics": "AT_LEAST_ONCE", "timeToLive": None},
                                  "tags": {"source": "bench"}}},
            "command": {"schema": "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0",
                        "data": {"channel": "#ops", "username": "sauna-bench",
                                 "text": "benchmark command %d: the nightly load finished" % i}}}},
        separators=(",", ":"), sort_keys=True))
EOF
"$BIN" send --config-dir "$DIR" "$DIR/commands.jsonl"

OUT=target/callgrind.out
mkfifo "$DIR/lines"
valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" run --config-dir "$DIR" \
  > "$DIR/lines" 2> "$DIR/sauna.log" &
RUN=$!
head -n "$N" "$DIR/lines" > /dev/null
kill -TERM "$RUN"
cat "$DIR/lines" > /dev/null &
wait "$RUN" || true

# Instructions per command of each part (inclusive), and of the whole run.
callgrind_annotate --inclusive=yes "$OUT" 2>/dev/null | python3 -c '
import re, sys
n = int(sys.argv[1])
parts = [
    ("whole run, per command (start-up and idle work included)", "PROGRAM TOTALS"),
    ("GetRecords: the SDK call and its decoding", "GetRecordsFluentBuilder::send::{{closure}}"),
    ("classify (parse threads)", "sauna::command::CommandParser::classify "),
    ("  the three schema validations", "KnownSchema::is_valid"),
    ("  the envelope'"'"'s fields", "sauna::command::from_tape::envelope"),
    ("  the data'"'"'s text for its responder", "sauna::command::from_tape::canonical_data"),
    ("stdout responder: a batch'"'"'s lines", "StdoutResponder as sauna::responders::Responder>::execute_batch"),
    ("consumer: commands answered (outcome, completion)", "ShardConsumer>::answered "),
    ("consumer: records admitted", "ShardConsumer>::admit_one"),
    ("consumer: dispatch to responders", "ShardConsumer>::dispatch "),
    ("Metrics actor: samples taken", "sauna::metrics::Metrics::take_sample"),
]
lines = sys.stdin.read().splitlines()
print("| part | instructions per command |\n|---|---|")
for label, needle in parts:
    hit = next((l for l in lines if needle in l), None)
    if hit is None:
        print(f"| {label} | - |")
        continue
    count = int(re.match(r"\s*([\d,]+)", hit).group(1).replace(",", ""))
    print(f"| {label} | {count / n:,.0f} |")
' "$N"
