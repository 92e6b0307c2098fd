#!/usr/bin/env bash
# Installs what the desktop (issue 27; docs/DESKTOP.md) runs inside workspaces, from Debian: the X server (Xvfb), the
# window manager (Openbox), the input, window and clipboard tools (xdotool, wmctrl, xclip), the VNC server of the live
# view (x11vnc), and, for the tests, xterm and xmessage. Workspaces see the host's /usr, so installing them on the host
# is installing them for every workspace. zlib's headers are for the build (the screenshot's PNG encoder).
# Idempotent: does nothing when all are present.
set -euo pipefail
packages=(xvfb openbox xdotool wmctrl xclip x11vnc xterm x11-utils zlib1g-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "agentbox: installing ${missing[*]} (the desktop)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
