#!/usr/bin/env bash
# Runs a test command with a time limit, so that a hang fails the run with what is needed to find it instead of using
# up CI's time: after LIMIT seconds it prints the tests that started and never ended (Swift Testing's "◇ … started"
# lines without their "✔"/"✘" line), every thread's stack of the test process (gdb, when installed), then kills it.
#
#   bash scripts/bounded.sh 900 swift test --skip-build --skip EndToEndTests
set -uo pipefail
limit=$1
shift
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The command's output goes to the terminal and to the log (for the list of unfinished tests), through one tee.
exec {output}> >(tee "$log")
tee_pid=$!
"$@" >&"$output" 2>&1 &
command_pid=$!

(
  # Checks once a second (no signal is needed to stop it: signals may be blocked in whatever started this script).
  for ((waited = 0; waited < limit; waited++)); do
    sleep 1
    kill -0 "$command_pid" 2> /dev/null || exit 0
  done
  echo
  echo "bounded.sh: '$*' is still running after ${limit} s; the tests that started and did not end:"
  # Each "◇ Test NAME started." without a later "✔ Test NAME …" or "✘ Test NAME …".
  python3 - "$log" <<'PY'
import re, sys
started, ended = [], set()
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    if "◇ Test case passing" in line:
        continue
    if m := re.search(r"◇ (Test|Suite) (.+?) started\.", line):
        started.append(m.group(2))
    elif m := re.search(r"[✔✘━] (Test|Suite) (.+?)(?: with \d+ test cases?)? (passed|failed) after", line):
        ended.add(m.group(2))
for name in started:
    if name not in ended:
        print("  " + name)
PY
  # The test processes among the command's descendants (swift test runs the .xctest bundle as a child).
  descendants() { for child in $(pgrep -P "$1" || true); do echo "$child"; descendants "$child"; done; }
  for pid in $(descendants "$command_pid"); do
    grep -q '\.xctest' /proc/"$pid"/cmdline 2> /dev/null || continue
    echo "bounded.sh: the stacks of $(tr '\0' ' ' < /proc/"$pid"/cmdline 2>/dev/null | cut -c1-200) (pid $pid):"
    if command -v gdb > /dev/null; then
      timeout 120 gdb -p "$pid" -batch -ex "thread apply all bt 30" 2>&1 | grep -E '^(Thread|#)' | head -2000
    fi
    kill -9 "$pid" 2> /dev/null || true
  done
  sleep 5
  kill -9 "$command_pid" 2> /dev/null || true
) &
watcher=$!

wait "$command_pid"
status=$?
exec {output}>&-
wait "$tee_pid" 2> /dev/null || true
wait "$watcher" 2> /dev/null || true
exit "$status"
