#!/usr/bin/env bash
# The cluster's figures (issue 25): requests through a non-owner node against its owner, and failover after kill -9.
#   bash bench/cluster.sh              release build, 2,000 requests of each kind
#   bash bench/cluster.sh --smoke      debug build, 20 requests (what CI runs, so that it never rots)
# Starts the checkout's own Postgres (scripts/setup-postgres.sh) and SeaweedFS (scripts/setup-s3.sh) on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
configuration=${AGENTBOX_BENCH_CONFIGURATION:-release}
requests=2000
if [ "${1:-}" = "--smoke" ]; then configuration=debug; requests=20; fi
postgres=$(bash scripts/setup-postgres.sh)
weed=$(bash scripts/setup-s3.sh)
for product in agentbox agentbox-sandbox-init agentbox-mock-agent agentbox-acp-adapter; do
  swift build -c "$configuration" --product "$product" >/dev/null
done
bin="$(swift build -c "$configuration" --show-bin-path)/agentbox"
python3 bench/cluster.py --bin "$bin" --postgres "$postgres" --weed "$weed" --requests "$requests" --command "bash bench/cluster.sh $*"
