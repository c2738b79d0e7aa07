# A throwaway Candor server for the scripts that test a live one (sourced, not run).
#
#   start_server BINARY [serve options…]
#
# starts `BINARY serve` on a free loopback port with fresh data and keys directories, waits
# until it is ready, and stops it and removes its directories when the script exits. Sets
# PORT, WORK (holding data/, keys/ and server.log) and SERVER (its pid).

start_server() {
  local bin=$1
  shift
  WORK=$(mktemp -d)
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" serve --listen "127.0.0.1:$PORT" --data "$WORK/data" --keys "$WORK/keys" "$@" \
    >"$WORK/server.log" 2>&1 &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "the server did not become ready; its log:" >&2
  cat "$WORK/server.log" >&2
  return 1
}

# Fails, showing where, if the server panicked during the run.
check_no_panic() {
  if grep -q "panicked" "$WORK/server.log"; then
    echo "the server panicked during the run:" >&2
    grep -A5 panicked "$WORK/server.log" >&2
    return 1
  fi
}
