#!/usr/bin/env bash
# Sets up the machine, builds AgentBox in release mode and starts the server. Extra arguments go to `agentbox serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
swift build -c release --product agentbox-sandbox-init
swift build -c release --product agentbox-mock-agent
swift build -c release --product agentbox
exec "$(swift build -c release --show-bin-path)/agentbox" serve "$@"
