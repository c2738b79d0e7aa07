#!/usr/bin/env bash
# Reproduces the figures of BENCHMARKS.md on this machine: a fresh log in a temporary
# directory, loaded over loopback by `candor bench`, then read, then restarted.
#
#   scripts/bench.sh            # the table's rows at their default sizes
#   ENTRIES=1000000 scripts/bench.sh   # the 1,000,000-entry rows (takes several minutes)
#
# Each row prints one JSON line from `candor bench`. Nothing here asserts a figure: the
# machines are shared and noisy; compare with BENCHMARKS.md by eye.
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${ENTRIES:-100000}
PORT=${PORT:-18181}
URL=http://127.0.0.1:$PORT

cargo build --release --locked -q
BIN=$PWD/target/release/candor
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"

start() {
  "$BIN" serve --listen 127.0.0.1:$PORT --rate-ip 0 --rate-publisher 0 >"$WORK/server.log" 2>&1 &
  SERVER=$!
  local t0=$(date +%s.%N)
  until curl -sf "$URL/readyz" >/dev/null; do sleep 0.02; done
  echo "{\"row\":\"ready after start\",\"seconds\":$(echo "$(date +%s.%N) - $t0" | bc)}"
}

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
start
echo "# ingest, batch endpoint (batches of 256, 8 connections)"
"$BIN" bench --server "$URL" --mode batch -c 8 --batch-size 256 -n 100000 --duration 120 --server-pid $SERVER --data data --json
echo "# ingest, single endpoint (64 connections)"
"$BIN" bench --server "$URL" --mode single -c 64 -n 20000 --duration 60 --server-pid $SERVER --json
# Grow the log to ENTRIES for the read rows.
have=$(curl -s "$URL/checkpoint" | sed -n 2p)
if [ "$have" -lt "$ENTRIES" ]; then
  echo "# growing the log to $ENTRIES entries"
  "$BIN" bench --server "$URL" --mode batch -c 8 --batch-size 1000 -n $((ENTRIES - have)) --duration 3600 --json >/dev/null
fi
echo "# inclusion proofs (64 connections)"
"$BIN" bench --server "$URL" --mode proof -c 64 -n 100000 --duration 30 --server-pid $SERVER --json
echo "# full tiles (64 connections)"
"$BIN" bench --server "$URL" --mode tile -c 64 -n 100000 --duration 30 --server-pid $SERVER --data data --json
echo "# stats query grouped by country and kind (8 connections)"
"$BIN" bench --server "$URL" --mode stats -c 8 -n 2000 --duration 30 --server-pid $SERVER --json
echo "# full audit"
/usr/bin/time -f '{"row":"audit","seconds":%e,"max_rss_kib":%M}' "$BIN" audit "$URL" --log-key keys/log.vkey --state audit-state
echo "# incremental audit (nothing new)"
/usr/bin/time -f '{"row":"re-audit","seconds":%e,"max_rss_kib":%M}' "$BIN" audit "$URL" --log-key keys/log.vkey --state audit-state >/dev/null
echo "# restart"
kill -TERM $SERVER; wait $SERVER || true
start
until curl -sf "$URL/api/v1/stats" >/dev/null; do sleep 0.1; done
echo "{\"row\":\"RSS after a restart, statistics rebuilt\",\"rss_mib\":$(awk '/VmRSS/{printf "%.1f", $2/1024}' /proc/$SERVER/status)}"
kill -TERM $SERVER; wait $SERVER || true
