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
. scripts/lib/server.sh
start_server "$CANDOR_BIN" --rate-ip 0 --rate-publisher 0
STATUS=0
python3 scripts/conformance/conformance.py --url "http://127.0.0.1:$PORT" --keys "$WORK/keys" \
  || STATUS=$?
check_no_panic || { [ "$STATUS" -ne 0 ] || STATUS=1; }
exit "$STATUS"
