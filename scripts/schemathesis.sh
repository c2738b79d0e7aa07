#!/usr/bin/env bash
# Property-based API testing with Schemathesis against openapi.yaml and a real server with
# the demo data: every response must conform to the spec (status codes, content types,
# bodies) and no request may produce a 5xx. Installs Schemathesis from PyPI if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v st >/dev/null 2>&1; then
  python3 -m pip install -q schemathesis
fi
# The debug build: CI has just built it for the tests.
cargo build --locked -q
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
./target/debug/candor serve --demo --listen 127.0.0.1:$PORT --data "$WORK/data" --keys "$WORK/keys" \
  --rate-ip 0 >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done
st run openapi.yaml --url "http://127.0.0.1:$PORT" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --max-examples "${ST_EXAMPLES:-40}" --seed "${ST_SEED:-20261129}" </dev/null
if grep -q "panicked" "$WORK/server.log"; then
  echo "the server panicked during the run:" >&2
  grep -A5 panicked "$WORK/server.log" >&2
  exit 1
fi
