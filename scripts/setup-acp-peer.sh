#!/usr/bin/env bash
# Installs the ACP conformance peer into .build/acp-peer: the `agent-client-protocol` Python package (PyPI) in a
# virtual environment, and the example agent from its source distribution (the wheel does not ship examples).
# Prints the directory. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.12.1
peer=.build/acp-peer
if [ ! -x "$peer/venv/bin/python" ] || [ ! -f "$peer/agent.py" ] || [ "$(cat "$peer/version" 2>/dev/null)" != "$version" ]; then
  rm -rf "$peer"
  mkdir -p "$peer"
  python3 -m venv "$peer/venv" >/dev/null 2>&1 || { apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$peer/venv"; }
  "$peer/venv/bin/pip" install -q "agent-client-protocol==$version" >/dev/null
  "$peer/venv/bin/pip" download -q --no-deps --no-binary :all: -d "$peer/sdist" "agent-client-protocol==$version" >/dev/null
  tar -xzf "$peer/sdist/agent_client_protocol-$version.tar.gz" -C "$peer/sdist"
  cp "$peer/sdist/agent_client_protocol-$version/examples/agent.py" "$peer/agent.py"
  echo "$version" > "$peer/version"
fi
# A second environment on the system's /usr/bin/python3, which workspaces see (their /usr is the host's): the
# session tests run the example agent inside a sandbox through it.
if [ -x /usr/bin/python3 ] && [ ! -x "$peer/sandbox-venv/bin/python" ]; then
  /usr/bin/python3 -m venv "$peer/sandbox-venv" >/dev/null 2>&1 || { apt-get install -y -qq python3-venv >/dev/null && /usr/bin/python3 -m venv "$peer/sandbox-venv"; }
  "$peer/sandbox-venv/bin/pip" install -q "agent-client-protocol==$version" >/dev/null
fi
echo "$(pwd)/$peer"
