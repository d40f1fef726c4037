#!/usr/bin/env bash
# make demo: start hpsched-server with its defaults, train the toy model against it, stop the server.
set -euo pipefail
build=${1:-build}
port=${2:-50051}
log=$(mktemp)
# The demo reads no metrics and opens no browser: --metrics_port=0 --http_port=0 keep it from needing (or failing
# on a taken) port 9464 or 8080.
"$build/server/hpsched-server" --port="$port" --address=127.0.0.1 --metrics_port=0 --http_port=0 >"$log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
  grep -q "serving on" "$log" && break
  kill -0 $server 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
echo "hpsched-server is serving on 127.0.0.1:$port"
"$build/client/toy-trainer" --target="127.0.0.1:$port"
