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
. scripts/lib/server.sh
start_server ./target/debug/candor --demo --rate-ip 0
st run openapi.yaml --url "http://127.0.0.1:$PORT" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --max-examples "${ST_EXAMPLES:-40}" --seed "${ST_SEED:-20261129}" </dev/null
check_no_panic
