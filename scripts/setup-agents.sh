#!/usr/bin/env bash
# Installs the real agents for the tests into .build/agents (the layout of a data directory's agents/):
# Claude Code from the claude-agent-sdk wheel on PyPI, which bundles the CLI, and Codex from openai-codex-cli-bin.
# Prints the directory. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
claude_sdk=0.2.189
agents=.build/agents
mkdir -p "$agents/claude"
if [ "$(cat "$agents/claude/wheel" 2>/dev/null)" != "$claude_sdk" ] || [ ! -x "$agents/claude/claude" ]; then
  cache=.build/agent-wheels
  mkdir -p "$cache"
  python3 -m pip download -q --no-deps --only-binary :all: -d "$cache" "claude-agent-sdk==$claude_sdk" >/dev/null
  wheel=$(ls "$cache"/claude_agent_sdk-"$claude_sdk"-*.whl | head -1)
  python3 - "$wheel" "$agents/claude/claude.partial" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open("claude_agent_sdk/_bundled/claude") as source, open(sys.argv[2], "wb") as out:
    shutil.copyfileobj(source, out, 1 << 20)
PY
  chmod 755 "$agents/claude/claude.partial"
  mv "$agents/claude/claude.partial" "$agents/claude/claude"
  "$agents/claude/claude" --version | cut -d' ' -f1 > "$agents/claude/version"
  echo "$claude_sdk" > "$agents/claude/wheel"
  rm -rf "$cache"
fi
# Codex from the openai-codex-cli-bin wheel, which ships the CLI binary.
codex_bin=0.163.0
mkdir -p "$agents/codex"
if [ "$(cat "$agents/codex/wheel" 2>/dev/null)" != "$codex_bin" ] || [ ! -x "$agents/codex/codex" ]; then
  cache=.build/agent-wheels
  mkdir -p "$cache"
  python3 -m pip download -q --no-deps --only-binary :all: -d "$cache" "openai-codex-cli-bin==$codex_bin" >/dev/null
  wheel=$(ls "$cache"/openai_codex_cli_bin-"$codex_bin"-*.whl | head -1)
  python3 - "$wheel" "$agents/codex/codex.partial" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open("codex_cli_bin/bin/codex") as source, open(sys.argv[2], "wb") as out:
    shutil.copyfileobj(source, out, 1 << 20)
PY
  chmod 755 "$agents/codex/codex.partial"
  mv "$agents/codex/codex.partial" "$agents/codex/codex"
  "$agents/codex/codex" --version | awk '{print $2}' > "$agents/codex/version"
  echo "$codex_bin" > "$agents/codex/wheel"
  rm -rf "$cache"
fi
# Amp's ACP adapter from PyPI (acp-amp), in a virtual environment on /usr/bin/python3, which workspaces see.
if [ -x /usr/bin/python3 ] && [ ! -x "$agents/amp/venv/bin/acp-amp" ]; then
  mkdir -p "$agents/amp"
  /usr/bin/python3 -m venv "$agents/amp/venv"
  "$agents/amp/venv/bin/pip" install -q acp-amp >/dev/null
fi
echo "$(pwd)/$agents"
