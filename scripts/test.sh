#!/usr/bin/env bash
# Sets up the machine, builds everything and runs the whole test suite (unit, route and end-to-end tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
# The ACP conformance peer (the Python SDK's example agent, from PyPI); the suite that uses it is required here.
AGENTBOX_ACP_PEER=$(bash scripts/setup-acp-peer.sh)
export AGENTBOX_ACP_PEER
# The real agents (Claude Code from its PyPI wheel) for the end-to-end agent tests.
AGENTBOX_AGENTS=$(bash scripts/setup-agents.sh)
export AGENTBOX_AGENTS
swift build --build-tests
swift test --skip-build
# Smoke run of the benchmark that needs no server, so that it never rots (the full runs are in BENCHMARKS.md).
"$(swift build --show-bin-path)/agentbox-bench" store 1000 >/dev/null
if [ "$(id -u)" = 0 ] && command -v bwrap >/dev/null; then
  "$(swift build --show-bin-path)/agentbox-bench" session 500 >/dev/null
fi
