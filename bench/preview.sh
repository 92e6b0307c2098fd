#!/usr/bin/env bash
# Preview proxy benchmark of issue 6: requests per second and latency of a small HTTP server inside a workspace,
# hit directly (wrk inside the workspace, on its loopback) and through its preview URL (wrk on the host, through the
# AgentBox server). Release build, loopback only. Usage: bash bench/preview.sh [SECONDS]   (default 10; 1 = smoke)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
command -v node >/dev/null || { echo "node is needed for the server inside the workspace" >&2; exit 1; }
swift build -c release --product agentbox-sandbox-init >/dev/null
swift build -c release --product agentbox >/dev/null
bin="$(swift build -c release --show-bin-path)/agentbox"
work=$(mktemp -d /var/tmp/agentbox-bench-preview.XXXXXX)
chmod 755 "$work"
cleanup() { [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
"$bin" serve --port 0 --data-dir "$work/data" --no-token --log-level warning >"$work/port" 2>"$work/log" &
server=$!
for _ in $(seq 100); do grep -q listening "$work/port" 2>/dev/null && break; sleep 0.05; done
endpoint="http://127.0.0.1:$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$work/port" | head -1)"
export AGENTBOX_ENDPOINT=$endpoint
# Two cores for the workspace, so that wrk inside (the direct case) does not starve the server it measures.
curl -sf -X PUT -H 'content-type: application/json' -d '{"limits":{"cpuPercent":200}}' "$endpoint/v1/workspaces/bench" >/dev/null
cat >"$work/hello.js" <<'JS'
require("http").createServer((req, res) => { res.writeHead(200, {"content-type": "text/plain"}); res.end("hello\n"); }).listen(8080, "127.0.0.1");
JS
"$bin" fs put bench /workspace/hello.js "$work/hello.js" >/dev/null
"$bin" spawn bench -- node /workspace/hello.js >/dev/null
"$bin" fetch bench 8080 / >/dev/null   # waits until it listens
url=$("$bin" preview bench 8080)
[ -n "${HOLD:-}" ] && { echo "$url $server" > /tmp/preview-url; sleep "$HOLD"; }
parse() {  # wrk output → "rps p50"
  python3 -c '
import re, sys
text = sys.stdin.read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
m = re.search(r"50%\s+([\d.]+)(us|ms|s)", text)
p50 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
print(f"{rps:.0f} {p50:.3f}")'
}
direct=$("$bin" exec bench -- "wrk -t1 -c16 -d${seconds}s --latency http://127.0.0.1:8080/" | parse)
proxied=$(wrk -t1 -c16 -d"${seconds}s" --latency "$url" | parse)
read -r direct_rps direct_p50 <<<"$direct"
read -r proxied_rps proxied_p50 <<<"$proxied"
cat <<TABLE
| preview benchmark (wrk, 1 thread, 16 connections, ${seconds} s, node http server inside) | requests/s | p50 latency |
|---|---|---|
| direct, on the workspace's loopback (wrk inside the workspace) | $direct_rps | $direct_p50 ms |
| through the preview URL (wrk on the host) | $proxied_rps | $proxied_p50 ms |
| ratio / added latency | $(python3 -c "print('%.2f' % ($proxied_rps / $direct_rps))")× | +$(python3 -c "print('%.3f' % ($proxied_p50 - $direct_p50))") ms |
TABLE
