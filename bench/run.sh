#!/usr/bin/env bash
# The benchmark harness (issue 9), one command:
#   bash bench/run.sh            the full run: release build, results in bench/results/ (JSON, summary.md, cold-start.png)
#   bash bench/run.sh --smoke    one iteration of each at small sizes (what CI runs, so that the harness never rots)
#   bash bench/run.sh --only previews   a part of it (its results go to a directory of their own, named on stderr)
# Extra arguments go to bench/harness.py (e.g. --only cold,memory). Needs root and bubblewrap; installs wrk and
# matplotlib when missing. Set AGENTBOX_BENCH_CONFIGURATION=debug to measure the debug build (CI's smoke run does).
set -euo pipefail
cd "$(dirname "$0")/.."
configuration=${AGENTBOX_BENCH_CONFIGURATION:-release}
bash scripts/setup-system.sh  # the packages, and the host tuning the server is measured with
bash scripts/setup-desktop.sh  # Xvfb, Openbox, xterm... for the desktop's figures
missing=()
command -v wrk >/dev/null || missing+=(wrk)
# The plot needs matplotlib: Debian's python3-matplotlib, for /usr/bin/python3 (the harness runs on that interpreter).
python=/usr/bin/python3
"$python" -c 'import matplotlib' 2>/dev/null || missing+=(python3-matplotlib)
command -v node >/dev/null || missing+=(nodejs)
command -v nginx >/dev/null || missing+=(nginx-light)  # the reference proxy beside the preview figures
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi
for product in agentbox agentbox-sandbox-init agentbox-mock-agent agentbox-acp-adapter; do
  swift build -c "$configuration" --product "$product" >/dev/null
done
bin="$(swift build -c "$configuration" --show-bin-path)/agentbox"
# 1,000 SSE subscribers are 2,000 descriptors on loopback, 10,000 awake workspaces several each: as root, raise the
# hard limit too (to the kernel's fs.nr_open).
[ "$(id -u)" = 0 ] && ulimit -Hn "$(cat /proc/sys/fs/nr_open)" 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# bench/results holds the last full run: a smoke run, or a partial one (--only, --set), writes to a directory of its own.
out=bench/results
partial=
for argument in "$@"; do
  case "$argument" in
    --smoke) partial=smoke ;;
    --only|--only=*|--set|--set=*|--serve-arg|--serve-arg=*) [ -n "$partial" ] || partial=partial ;;
  esac
done
if [ -n "$partial" ]; then out=$(mktemp -d "/tmp/agentbox-bench-$partial.XXXXXX"); echo "results in $out" >&2; fi
"$python" bench/harness.py --bin "$bin" --out "$out" --command "bash bench/run.sh $*" "$@"
