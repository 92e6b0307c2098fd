#!/usr/bin/env bash
# File benchmarks of issue 4, against a release build of the real server on loopback:
#   100 MB upload (PUT fs/file) and download (GET fs/file) against cp on the same disk;
#   a tar upload of 10,000 small files; a snapshot and a fork of a 100 MB workspace.
# Usage: bash bench/files.sh [ITERATIONS]   (prints a Markdown table; ITERATIONS defaults to 5, 1 is the smoke mode)
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-5}
swift build -c release --product agentbox-sandbox-init >/dev/null
swift build -c release --product agentbox >/dev/null
bin="$(swift build -c release --show-bin-path)/agentbox"
work=$(mktemp -d /var/tmp/agentbox-bench-files.XXXXXX)
chmod 755 "$work"  # the workspaces' own uids must be able to enter the data directory
cleanup() { [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
"$bin" serve --port 0 --data-dir "$work/data" --no-token --log-level warning >"$work/port" 2>"$work/log" &
server=$!
for _ in $(seq 100); do grep -q listening "$work/port" 2>/dev/null && break; sleep 0.05; done
endpoint="http://127.0.0.1:$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$work/port" | head -1)"
curl -sf -X PUT "$endpoint/v1/workspaces/bench" >/dev/null

now() { date +%s.%N; }
median() { python3 -c 'import sys,statistics; print("%.4f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
mbps() { python3 -c 'import sys; print("%.0f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$@"; }

dd if=/dev/urandom of="$work/payload" bs=1M count=100 status=none
sync
up=(); down=(); copy=()
for i in $(seq "$iterations"); do
  start=$(now); cp "$work/payload" "$work/copy.$i"; sync "$work/copy.$i"; end=$(now)
  copy+=("$(python3 -c "print($end-$start)")")
  rm -f "$work/copy.$i"
  up+=("$(curl -sf -o /dev/null -w '%{time_total}' -X PUT --data-binary "@$work/payload" -H 'content-type: application/octet-stream' "$endpoint/v1/workspaces/bench/fs/file?path=/workspace/payload")")
  down+=("$(curl -sf -o "$work/down" -w '%{time_total}' "$endpoint/v1/workspaces/bench/fs/file?path=/workspace/payload")")
done
cmp -s "$work/payload" "$work/down" || { echo "downloaded bytes differ" >&2; exit 1; }
cp_s=$(median "${copy[@]}"); up_s=$(median "${up[@]}"); down_s=$(median "${down[@]}")

mkdir -p "$work/small"
python3 - "$work/small" <<'PY'
import os, sys
for i in range(10000):
    d = os.path.join(sys.argv[1], "d%02d" % (i % 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.txt" % i), "wb") as f: f.write(os.urandom(512).hex().encode())
PY
tar -C "$work/small" -cf "$work/small.tar" .
tars=()
for i in $(seq "$iterations"); do
  tars+=("$(curl -sf -o /dev/null -w '%{time_total}' -X POST --data-binary "@$work/small.tar" -H 'content-type: application/x-tar' "$endpoint/v1/workspaces/bench/fs/upload?path=/workspace/small$i")")
done
tar_s=$(median "${tars[@]}")
# Floors on the host, same disk: tar -x of the same archive, and cp -a of the unpacked tree (what a snapshot does).
untars=(); cpas=()
for i in $(seq "$iterations"); do
  mkdir -p "$work/untar$i"; sync
  start=$(now); tar -C "$work/untar$i" -xf "$work/small.tar"; sync; end=$(now)
  untars+=("$(python3 -c "print($end-$start)")")
  start=$(now); cp -a "$work/small" "$work/cpa$i"; sync; end=$(now)
  cpas+=("$(python3 -c "print($end-$start)")")
  rm -rf "$work/untar$i" "$work/cpa$i"
done
untar_s=$(median "${untars[@]}"); cpa_s=$(median "${cpas[@]}")

# Snapshot and fork: of a workspace holding one 100 MB file, and of one holding the 10,000 small files.
curl -sf -X PUT "$endpoint/v1/workspaces/big" >/dev/null
curl -sf -X PUT --data-binary "@$work/payload" "$endpoint/v1/workspaces/big/fs/file?path=/workspace/payload" >/dev/null
curl -sf -X PUT "$endpoint/v1/workspaces/many" >/dev/null
curl -sf -X POST --data-binary "@$work/small.tar" -H 'content-type: application/x-tar' "$endpoint/v1/workspaces/many/fs/upload?path=/workspace/small" >/dev/null
snapshot_and_fork() {  # KEY → "snapshot seconds,fork seconds" medians
  local snaps=() forks=()
  for i in $(seq "$iterations"); do
    sync
    start=$(now)
    id=$(curl -sf -X POST "$endpoint/v1/workspaces/$1/snapshots" | python3 -c 'import sys,json; print(json.load(sys.stdin)["id"])')
    mid=$(now)
    curl -sf -X PUT -H 'content-type: application/json' -d "{\"fromSnapshot\":\"$id\"}" "$endpoint/v1/workspaces/$1-fork$i" >/dev/null
    end=$(now)
    snaps+=("$(python3 -c "print($mid-$start)")"); forks+=("$(python3 -c "print($end-$mid)")")
  done
  echo "$(median "${snaps[@]}") $(median "${forks[@]}")"
}
read -r snap_s fork_s < <(snapshot_and_fork big)
read -r snap_many_s fork_many_s < <(snapshot_and_fork many)
fs_type=$(df -T "$work" | awk 'NR==2 {print $2}')

cat <<TABLE
| file benchmark (median of $iterations, $fs_type) | AgentBox | floor | ratio |
|---|---|---|---|
| 100 MB upload, PUT fs/file (fsync'd) | $(mbps 100 "$up_s") MB/s | cp + sync: $(mbps 100 "$cp_s") MB/s | $(python3 -c "print('%.2f' % ($cp_s/$up_s))")× |
| 100 MB download, GET fs/file | $(mbps 100 "$down_s") MB/s | cp + sync: $(mbps 100 "$cp_s") MB/s | $(python3 -c "print('%.2f' % ($cp_s/$down_s))")× |
| tar upload of 10,000 files of 1 KiB (boots once) | $(python3 -c "print('%.0f' % (10000/$tar_s))") files/s ($(python3 -c "print('%.0f' % ($tar_s*1000))") ms) | tar -x + sync: $(python3 -c "print('%.0f' % (10000/$untar_s))") files/s | $(python3 -c "print('%.2f' % ($untar_s/$tar_s))")× |
| snapshot of a workspace holding one 100 MB file | $(python3 -c "print('%.0f' % ($snap_s*1000))") ms | cp + sync: $(python3 -c "print('%.0f' % ($cp_s*1000))") ms | |
| fork of that snapshot (PUT fromSnapshot) | $(python3 -c "print('%.0f' % ($fork_s*1000))") ms | cp + sync: $(python3 -c "print('%.0f' % ($cp_s*1000))") ms | |
| snapshot of a workspace holding 10,000 files of 1 KiB | $(python3 -c "print('%.0f' % ($snap_many_s*1000))") ms | cp -a + sync: $(python3 -c "print('%.0f' % ($cpa_s*1000))") ms | |
| fork of that snapshot | $(python3 -c "print('%.0f' % ($fork_many_s*1000))") ms | cp -a + sync: $(python3 -c "print('%.0f' % ($cpa_s*1000))") ms | |
TABLE
