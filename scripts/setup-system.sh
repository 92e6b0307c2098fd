#!/usr/bin/env bash
# Installs the system packages AgentBox needs on Debian/Ubuntu (idempotent; does nothing when all are present).
set -euo pipefail
packages=(bubblewrap libsqlite3-dev zlib1g-dev procps iproute2 tmux curl python3 python3-venv python3-pip btrfs-progs dpkg-dev)
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
# Host tuning (root, Linux >= 6.0; AGENTBOX_NO_HOST_TUNING=1 skips it): every workspace boot moves its sandbox into
# its cgroups, and the first such move waits for an RCU grace period (the kernel's cgroup threadgroup lock), which
# measured 8-20 ms here, more than the rest of a boot. `favordynmods` on the cgroup2 mount keeps that lock in its
# writer-friendly mode: the move takes ~0.1 ms, for slightly dearer forks and exits host-wide (see BENCHMARKS.md).
if [ "$(id -u)" -eq 0 ] && [ -z "${AGENTBOX_NO_HOST_TUNING:-}" ]; then
  for mountpoint in /sys/fs/cgroup/unified /sys/fs/cgroup; do
    if [ "$(stat -f -c %T "$mountpoint" 2>/dev/null)" = cgroup2fs ]; then
      if ! grep -q " $mountpoint cgroup2 .*favordynmods" /proc/mounts; then
        mount -o remount,favordynmods "$mountpoint" 2>/dev/null \
          && echo "agentbox: $mountpoint remounted with favordynmods (faster cgroup moves at boot)" >&2 || true
      fi
      break
    fi
  done
  # Room for many awake workspaces (issue 28: 10,000, each with a shell): each is two or three processes and a PTY
  # from its own devpts, which all count against the host's kernel.pty.max (4,096 by default) and kernel.pid_max
  # (32,768 on small machines). Only raised, never lowered.
  raise() {
    local current
    current=$(cat "/proc/sys/$1" 2>/dev/null) || return 0
    if [ "$current" -lt "$2" ]; then
      echo "$2" > "/proc/sys/$1" 2>/dev/null && echo "agentbox: $1 raised from $current to $2 (many awake workspaces)" >&2 || true
    fi
  }
  raise kernel/pty/max 65536
  raise kernel/pid_max 4194304
  raise fs/inotify/max_user_instances 65536
fi
