#!/usr/bin/env bash
# Conformance: an independent client (scripts/conformance/conformance.py, written from
# docs/protocol-v1.md, the schemas and openapi.yaml only) drives a fresh server through the
# whole protocol, verifies every receipt, audits the log through the static API and recomputes
# the statistics. Fails if any check fails or the server panicked.
# CANDOR_BIN=path/to/candor skips the build and uses that binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c 'import cryptography' 2>/dev/null; then
  python3 -m pip install -q cryptography
fi
if [ -z "${CANDOR_BIN:-}" ]; then
  # The debug build: CI has just built it for the tests.
  cargo build --locked -q
  CANDOR_BIN=./target/debug/candor
fi
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$CANDOR_BIN" serve --listen 127.0.0.1:$PORT --data "$WORK/data" --keys "$WORK/keys" \
  --rate-ip 0 --rate-publisher 0 >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done
STATUS=0
python3 scripts/conformance/conformance.py --url "http://127.0.0.1:$PORT" --keys "$WORK/keys" \
  || STATUS=$?
if grep -q "panicked" "$WORK/server.log"; then
  echo "the server panicked during the run:" >&2
  grep -A5 panicked "$WORK/server.log" >&2
  [ "$STATUS" -ne 0 ] || STATUS=1
fi
exit "$STATUS"
