#!/usr/bin/env bash
# Installs E2B's own Python SDKs from PyPI, each supported version in a virtual environment of its own under
# .build/e2b/<name>, for the end-to-end tests that drive AgentBox's E2B-compatible API with them
# (Tests/EndToEndTests/E2BEndToEndTests.swift, Tests/Support/e2b_sdk_test.py). Prints the directory. Idempotent.
# Without PyPI it fails with a message, and those tests are skipped (they say how to run this).
set -euo pipefail
cd "$(dirname "$0")/.."
root=.build/e2b
# name=requirement: the versions docs/E2B.md's compatibility table lists.
environments=(
  "e2b-2.63.0=e2b==2.63.0"
  "e2b-2.45.1=e2b==2.45.1"
  "code-interpreter-2.11=e2b-code-interpreter~=2.11.0"
)
mkdir -p "$root"
# The code interpreter's cells run on the workspace's python3 (the host's /usr, through the sandbox's system layer),
# and its checks draw a plot: Debian's python3-matplotlib.
if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  echo "agentbox: installing python3-matplotlib (Debian) for the code interpreter's plots" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-matplotlib >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-matplotlib >/dev/null; }
fi
for entry in "${environments[@]}"; do
  name=${entry%%=*}
  requirement=${entry#*=}
  venv="$root/$name"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/requirement" 2>/dev/null)" = "$requirement" ]; then continue; fi
  rm -rf "$venv"
  python3 -m venv "$venv" >/dev/null 2>&1 || { apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"; }
  if ! "$venv/bin/pip" install -q --disable-pip-version-check "$requirement" >"$root/$name.pip.log" 2>&1; then
    echo "agentbox: could not install $requirement from PyPI (see $root/$name.pip.log); the E2B end-to-end tests will be skipped" >&2
    rm -rf "$venv"
    exit 1
  fi
  echo "$requirement" > "$venv/requirement"
done
echo "$(pwd)/$root"
