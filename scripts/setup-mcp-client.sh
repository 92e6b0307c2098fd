#!/usr/bin/env bash
# Installs the official Python MCP SDK (`mcp` on PyPI) into .build/mcp-client/venv, for the end-to-end tests that drive
# `POST /v1/mcp` and `agentbox mcp` with it (Tests/Support/mcp_client.py). Prints the directory. Idempotent.
# Without PyPI it fails with a message, and those tests are skipped (they say how to run this).
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.3.0
client=.build/mcp-client
if [ ! -x "$client/venv/bin/python" ] || [ "$(cat "$client/version" 2>/dev/null)" != "$version" ]; then
  rm -rf "$client"
  mkdir -p "$client"
  python3 -m venv "$client/venv" >/dev/null 2>&1 || { apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$client/venv"; }
  if ! "$client/venv/bin/pip" install -q --disable-pip-version-check "mcp==$version" >"$client/pip.log" 2>&1; then
    echo "agentbox: could not install mcp==$version from PyPI (see $client/pip.log); the MCP end-to-end tests will be skipped" >&2
    rm -rf "$client/venv"
    exit 1
  fi
  echo "$version" > "$client/version"
fi
echo "$(pwd)/$client"
