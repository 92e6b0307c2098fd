#!/usr/bin/env bash
# Regenerates docs/ui/*.png: starts the built server on a scratch data directory (as root, for the sandboxes) and runs
# the Inspector's browser test with --screenshots docs/ui. Run after `swift build`.
set -euo pipefail
cd "$(dirname "$0")/.."
browser=$(bash scripts/setup-browser.sh)
bin=$(swift build --show-bin-path)
data=$(mktemp -d /tmp/agentbox-ui-XXXXXX)
chmod 755 "$data"
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$bin/agentbox" serve --port 0 --data-dir "$data/data" --token "$token" > "$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$data/server.log" | grep -o '[0-9]*$' || true)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$data/server.log" >&2; exit 1; }
"$browser/venv/bin/python" Tests/Inspector/inspector_test.py --url "http://127.0.0.1:$port" --token "$token" --screenshots docs/ui
