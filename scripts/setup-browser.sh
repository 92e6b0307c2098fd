#!/usr/bin/env bash
# Installs what the Inspector's browser test needs: Debian's Chromium, and Playwright for Python (PyPI) in
# .build/browser/venv (no browser download: Playwright drives the system's Chromium). Prints the directory. Idempotent.
# Without Debian's packages or PyPI it fails with a message, and the browser test is skipped (it says how to run this).
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.65.2
browser=.build/browser
if ! command -v chromium >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "agentbox: installing chromium (Debian) for the Inspector's browser test" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null || { echo "agentbox: could not install chromium" >&2; exit 1; }
fi
if [ ! -x "$browser/venv/bin/python" ] || [ "$(cat "$browser/version" 2>/dev/null)" != "$version" ]; then
  rm -rf "$browser"
  mkdir -p "$browser"
  python3 -m venv "$browser/venv"
  echo "agentbox: installing playwright==$version (PyPI) for the Inspector's browser test" >&2
  if ! "$browser/venv/bin/pip" install -q --disable-pip-version-check "playwright==$version" >"$browser/pip.log" 2>&1; then
    echo "agentbox: could not install playwright==$version from PyPI (see $browser/pip.log); the browser test will be skipped" >&2
    rm -rf "$browser/venv"
    exit 1
  fi
  echo "$version" > "$browser/version"
fi
echo "$(pwd)/$browser"
