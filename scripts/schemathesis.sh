#!/usr/bin/env bash
# Fuzzes the real server through its own OpenAPI document with schemathesis (PyPI), bounded to a few minutes:
# every generated request must get an answer that is not a server error (5xx). Run by scripts/test.sh.
#   bash scripts/schemathesis.sh [path to the agentbox binary]   (default: the debug build)
#   AGENTBOX_SCHEMATHESIS_FILTER="--include-tag cron" bash scripts/schemathesis.sh   (one area of the API)
# Left out: installAgent (it downloads agents of 150+ MB, a 503 when the network has none) and uploadTar
# (schemathesis cannot make tar bodies; BadInputTests and the file tests send it malformed archives).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-"$(swift build --show-bin-path)/agentbox"}
venv=${AGENTBOX_SCHEMATHESIS_VENV:-"$HOME/.cache/agentbox/schemathesis-venv"}
if [ ! -x "$venv/bin/schemathesis" ]; then
  echo "agentbox: installing schemathesis into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis>=4,<5"
fi
work=$(mktemp -d /tmp/agentbox-schemathesis.XXXXXX)
chmod 755 "$work"
token=fuzz-$RANDOM$RANDOM
"$binary" serve --port 0 --data-dir "$work/data" --token "$token" --log-level warning --port-wait 200ms \
  >"$work/stdout" 2>"$work/server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/stdout")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "${port:-}" ] || { echo "agentbox: the server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
curl -sf -X PUT -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/workspaces/fuzz" >/dev/null
status=0
timeout 600 "$venv/bin/schemathesis" --config-file scripts/schemathesis/schemathesis.toml run "http://127.0.0.1:$port/v1/openapi.json" \
  -H "Authorization: Bearer $token" --checks not_a_server_error --phases examples,fuzzing \
  --max-examples "${AGENTBOX_SCHEMATHESIS_EXAMPLES:-10}" --workers 2 --request-timeout 30 --continue-on-failure \
  --exclude-operation-id installAgent --exclude-operation-id uploadTar ${AGENTBOX_SCHEMATHESIS_FILTER:-} || status=$?
if ! kill -0 $server 2>/dev/null; then
  echo "agentbox: the server died under schemathesis" >&2
  cat "$work/server.log" >&2
  exit 1
fi
if [ $status -eq 124 ]; then
  echo "agentbox: schemathesis did not finish in 600 s (a request that never ends?); the server's log:" >&2
  tail -50 "$work/server.log" >&2
elif [ $status -ne 0 ]; then
  echo "agentbox: schemathesis found server errors (see above); the server's log:" >&2
  tail -50 "$work/server.log" >&2
fi
exit $status
