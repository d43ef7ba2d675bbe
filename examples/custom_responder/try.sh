#!/usr/bin/env bash
# Runs the custom-responder example end to end on this machine: the local emulators, a stream
# of its own, a local stand-in for OpsGenie's Alert API (it prints what it receives), one
# create_alert command put with `send`, and `run` for a few seconds. Nothing leaves 127.0.0.1.
# Against the real OpsGenie: put your key and apiUrl in config/opsgenie.json, create the stream
# (README, "Amazon Kinesis setup"), and `cargo run --example custom_responder -- run --config-dir …`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
scripts/emulators.sh start
eval "$(scripts/emulators.sh env)"
# (The test of this script gives the binary cargo test built.)
bin=${SAUNA_EXAMPLE_BIN:-}
if [ -z "$bin" ]; then
  cargo build --quiet --example custom_responder
  bin=target/debug/examples/custom_responder
fi

work=$(mktemp -d)
stream="custom-responder-$(date +%s)-$$"
.emulators/moto/bin/aws kinesis create-stream --stream-name "$stream" --shard-count 1 --region us-east-1
.emulators/moto/bin/aws kinesis wait stream-exists --stream-name "$stream" --region us-east-1

# The stand-in for OpsGenie: any free port, written to a file once it listens.
python3 - "$work/port" > "$work/opsgenie.out" 2>&1 <<'PY' &
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Alerts(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        print(f"OpsGenie <- {self.path} auth={self.headers.get('Authorization', '').split(' ')[0]} message={body.get('message')!r}", flush=True)
        self.send_response(202); self.send_header("Content-Type", "application/json"); self.end_headers()
        self.wfile.write(b'{"result": "Request will be processed", "requestId": "local"}')
    def log_message(self, *args): pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Alerts)
open(sys.argv[1], "w").write(str(server.server_address[1]))
server.serve_forever()
PY
opsgenie=$!
trap 'kill $opsgenie 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")

mkdir "$work/config"
sed "s/\"sauna-quickstart\"/\"$stream\"/g" examples/custom_responder/config/kinesis.json > "$work/config/kinesis.json"
sed "s#https://api.eu.opsgenie.com#http://127.0.0.1:$port#" examples/custom_responder/config/opsgenie.json > "$work/config/opsgenie.json"
printf '{"schema": "iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0", "data": {"igluRepositories": ["%s"]}}\n' \
  "$PWD/examples/custom_responder/iglu" > "$work/config/runtime.json"

echo '{"schema": "iglu:com.opsgenie.sauna.commands/create_alert/jsonschema/1-0-0", "data": {"message": "Disk full on web-42", "priority": "P2"}}' \
  | "$bin" send --config-dir "$work/config"
echo "== custom_responder run (stopped with SIGTERM after 5 s)"
RUST_LOG=${RUST_LOG:-info} "$bin" run --config-dir "$work/config" 2> "$work/sauna.log" &
sauna=$!
sleep 5
kill -TERM $sauna
wait $sauna
echo "== what the stand-in for OpsGenie received"
cat "$work/opsgenie.out"
echo "== outcomes"
grep 'sauna::outcome' "$work/sauna.log" | sed 's/^\[[^]]*\] *//'
