#!/usr/bin/env bash
# Local AWS emulators for sauna's tests, benchmarks and quick start.
#
#   scripts/emulators.sh install   install the pinned emulators into .emulators/ (npm + PyPI only)
#   scripts/emulators.sh start     start them on 127.0.0.1 (idempotent), wait until they answer
#   scripts/emulators.sh stop      stop the ones this script started (by their PID files)
#   scripts/emulators.sh status    say which are up
#   scripts/emulators.sh env       print the environment that points the AWS SDK at them
#
# Which emulator for what (the team measured each before choosing it):
#   kinesis-mock (npm kinesis-local) Kinesis for functional tests: ChildShards, MillisBehindLatest,
#                                    iterator expiry, split/merge lineage
#   kinesalite                       Kinesis for throughput benchmarks (fast, flat as data grows)
#   dynalite                         DynamoDB (lease table, outcome log)
#   moto_server                      CloudWatch (the only local one; see Cargo.toml for the
#                                    aws-sdk-cloudwatch pin that keeps it parseable)
# moto's Python venv (.emulators/moto) also holds aws-kinesis-agg, the KPL aggregation format's
# aggregator that tests/fixtures/kpl_aggregate.py runs to make the aggregated records of tests.
#
# Ports can be moved with SAUNA_KINESIS_PORT, SAUNA_KINESALITE_PORT, SAUNA_DYNAMODB_PORT,
# SAUNA_CLOUDWATCH_PORT. Everything lives in .emulators/ at the project root (git-ignored).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR="$ROOT/.emulators"
PINS="$ROOT/scripts/emulators"

KINESIS_PORT=${SAUNA_KINESIS_PORT:-45680}
KINESIS_TLS_PORT=${SAUNA_KINESIS_TLS_PORT:-45681}
KINESALITE_PORT=${SAUNA_KINESALITE_PORT:-45690}
DYNAMODB_PORT=${SAUNA_DYNAMODB_PORT:-45700}
CLOUDWATCH_PORT=${SAUNA_CLOUDWATCH_PORT:-45710}

log() { printf 'emulators: %s\n' "$*" >&2; }

install() {
  mkdir -p "$DIR/node"
  if ! cmp -s "$PINS/package-lock.json" "$DIR/node/package-lock.json" || [ ! -d "$DIR/node/node_modules" ]; then
    log "installing kinesis-local, kinesalite, dynalite from npm (versions in scripts/emulators/package.json)"
    cp "$PINS/package.json" "$PINS/package-lock.json" "$DIR/node/"
    # leveldown/classic-level print install-script warnings; their prebuilt binaries load fine.
    (cd "$DIR/node" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  if ! cmp -s "$PINS/requirements.txt" "$DIR/moto/requirements.txt" || [ ! -x "$DIR/moto/bin/moto_server" ]; then
    log "installing moto[server], aws-kinesis-agg and awscli from PyPI (versions in scripts/emulators/requirements.txt)"
    python3 -m venv "$DIR/moto"
    "$DIR/moto/bin/pip" install --quiet --disable-pip-version-check -r "$PINS/requirements.txt"
    cp "$PINS/requirements.txt" "$DIR/moto/requirements.txt"
  fi
  cat > "$DIR/node/kinesalite.js" <<'EOF'
// kinesalite's CLI cannot choose the address; this binds it to loopback, with no artificial
// delays and a shard limit high enough for several benchmark streams.
const port = parseInt(process.argv[2], 10);
require('kinesalite')({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 1000 })
  .listen(port, '127.0.0.1', (err) => { if (err) { console.error(err); process.exit(1); } });
EOF
}

# up NAME PORT: true when something answers HTTP on 127.0.0.1:PORT.
up() { curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$2/" 2>/dev/null; }

running() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

# launch NAME PORT CWD CMD...: start CMD in the background unless NAME already answers.
launch() {
  local name=$1 port=$2 cwd=$3; shift 3
  if running "$name" && up "$name" "$port"; then return 0; fi
  if up "$name" "$port"; then
    log "port $port already answers but $name was not started by this script; using it"
    return 0
  fi
  (cd "$cwd" && exec setsid "$@" >"$DIR/$name.log" 2>&1 < /dev/null) &
  echo $! > "$DIR/$name.pid"
}

wait_up() {
  local name=$1 port=$2 i
  for i in $(seq 1 150); do
    if up "$name" "$port"; then return 0; fi
    if ! running "$name"; then
      log "$name exited during start-up; its log ($DIR/$name.log):"; tail -20 "$DIR/$name.log" >&2; return 1
    fi
    sleep 0.2
  done
  log "$name did not answer on 127.0.0.1:$port within 30 s"; return 1
}

start() {
  [ -d "$DIR/node/node_modules" ] && [ -x "$DIR/moto/bin/moto_server" ] || install
  local km="$DIR/node/node_modules/kinesis-local"
  # kinesis-mock opens its TLS certificate relative to the working directory, so it runs from
  # its package folder. Durations are shortened so tests never wait on stream state changes.
  launch kinesis "$KINESIS_PORT" "$km" env \
    KINESIS_MOCK_PLAIN_PORT="$KINESIS_PORT" KINESIS_MOCK_TLS_PORT="$KINESIS_TLS_PORT" \
    CREATE_STREAM_DURATION=10ms DELETE_STREAM_DURATION=10ms SPLIT_SHARD_DURATION=10ms \
    MERGE_SHARDS_DURATION=10ms UPDATE_SHARD_COUNT_DURATION=10ms \
    REGISTER_STREAM_CONSUMER_DURATION=10ms DEREGISTER_STREAM_CONSUMER_DURATION=10ms \
    SHARD_LIMIT=1000 ON_DEMAND_STREAM_COUNT_LIMIT=100 SHOULD_PERSIST_DATA=false LOG_LEVEL=WARN \
    node main.js
  launch kinesalite "$KINESALITE_PORT" "$DIR/node" node kinesalite.js "$KINESALITE_PORT"
  launch dynamodb "$DYNAMODB_PORT" "$DIR/node" node node_modules/dynalite/cli.js \
    --host 127.0.0.1 --port "$DYNAMODB_PORT" --createTableMs 0 --deleteTableMs 0 --updateTableMs 0
  launch cloudwatch "$CLOUDWATCH_PORT" "$DIR" "$DIR/moto/bin/moto_server" -H 127.0.0.1 -p "$CLOUDWATCH_PORT"
  wait_up kinesis "$KINESIS_PORT"
  wait_up kinesalite "$KINESALITE_PORT"
  wait_up dynamodb "$DYNAMODB_PORT"
  wait_up cloudwatch "$CLOUDWATCH_PORT"
  log "up: kinesis-mock :$KINESIS_PORT, kinesalite :$KINESALITE_PORT, dynalite :$DYNAMODB_PORT, moto :$CLOUDWATCH_PORT"
}

stop() {
  local name pid
  for name in kinesis kinesalite dynamodb cloudwatch; do
    if [ -f "$DIR/$name.pid" ]; then
      pid=$(cat "$DIR/$name.pid")
      # setsid made each emulator a process-group leader: stop the group (npm/node children too).
      kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
      rm -f "$DIR/$name.pid"
    fi
  done
  log "stopped"
}

status() {
  local rc=0
  for pair in kinesis:$KINESIS_PORT kinesalite:$KINESALITE_PORT dynamodb:$DYNAMODB_PORT cloudwatch:$CLOUDWATCH_PORT; do
    if up "${pair%%:*}" "${pair##*:}"; then echo "${pair%%:*} up on 127.0.0.1:${pair##*:}"
    else echo "${pair%%:*} down"; rc=1; fi
  done
  return $rc
}

env_vars() {
  cat <<EOF
export AWS_ENDPOINT_URL_KINESIS=http://127.0.0.1:$KINESIS_PORT
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$DYNAMODB_PORT
export AWS_ENDPOINT_URL_CLOUDWATCH=http://127.0.0.1:$CLOUDWATCH_PORT
export SAUNA_BENCH_KINESIS_ENDPOINT=http://127.0.0.1:$KINESALITE_PORT
export AWS_ACCESS_KEY_ID=sauna-local
export AWS_SECRET_ACCESS_KEY=sauna-local
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
EOF
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) env_vars ;;
  *) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
