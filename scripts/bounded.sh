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

# Prints each "◇ Test NAME started." of the log without a later "✔ Test NAME …" or "✘ Test NAME …".
unfinished() {
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
left = [name for name in started if name not in ended]
# Tests first (the suites under way say little), and a bounded list: CI keeps only the output's end, and a crash's
# own lines, printed after this list, must stay in it.
left.sort(key=lambda name: name.startswith('"') or not name.endswith(")"))
for name in left[:40]:
    print("  " + name)
if len(left) > 40:
    print(f"  … and {len(left) - 40} more")
PY
}

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
  unfinished
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
# A test process that crashed (Swift's backtracer prints every thread's stack, and CI keeps only the output's end):
# the tests under way, then the crash's first lines and the crashed thread's stack, once more at the end.
if [ "$status" -ne 0 ] && grep -qE '^\*\*\* (Program crashed|Signal [0-9]+)' "$log"; then
  echo
  echo "bounded.sh: '$*' crashed (status $status). The tests under way, then the crash and the crashed thread:"
  unfinished
  python3 - "$log" <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8", errors="replace").read().splitlines()
start = next(i for i, line in enumerate(lines) if line.startswith("*** Program crashed") or line.startswith("*** Signal"))
shown = 0
for line in lines[start:start + 6]:
    print("  " + line)
for i in range(start, len(lines)):
    if lines[i].startswith("Thread ") and "crashed" in lines[i]:
        for line in lines[i:i + 60]:
            if shown and (line.startswith("Thread ") or line.startswith("Registers:")):
                break
            print("  " + line)
            shown += 1
        break
PY
fi
exit "$status"
