#!/usr/bin/env bash
# Installs the system packages AgentBox needs on Debian/Ubuntu (idempotent; does nothing when all are present).
set -euo pipefail
packages=(bubblewrap libsqlite3-dev procps tmux curl python3 python3-venv)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "agentbox: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v swift >/dev/null 2>&1; then
  echo "agentbox: Swift 6.2 or newer must be on PATH (https://www.swift.org/install/linux/)" >&2
  exit 1
fi
