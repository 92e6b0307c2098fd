#!/usr/bin/env python3
"""How a server with many awake workspaces stops (issue 28, item 4).

Starts `agentbox serve` on a fresh data directory and wakes N workspaces, each with one idle shell, from 4 threads.
Then it sends SIGTERM and reports the exit status and how long the stop took, with the end of the server's log. A
stop that outlasts the service group's grace leaves the remaining sleeps and exits 0, as after a kill; see
docs/ARCHITECTURE.md, "Background work and shutdown". Run it as root, with the release build.

Example:
    python3 bench/stop_many.py --bin .build-release/release/agentbox --workspaces 3000
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the agentbox binary")
    parser.add_argument("--workspaces", type=int, default=1000, help="how many workspaces to wake, each with a shell (default 1000)")
    arguments = parser.parse_args()
    data = tempfile.mkdtemp(prefix="agentbox-stop.", dir="/var/tmp")
    os.chmod(data, 0o755)  # the workspaces' own uids pass through it
    log_path = data + ".log"
    log = open(log_path, "w")
    server = subprocess.Popen(
        [arguments.bin, "serve", "--port", "0", "--data-dir", data, "--token", "t", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = server.stdout.readline()
        while line and "listening" not in line:
            line = server.stdout.readline()
        if not line:
            raise SystemExit(f"the server did not start; see {log_path}")
        port = re.search(r":(\d+)", line).group(1)

        def call(method, path, body=None):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}", method=method, data=None if body is None else json.dumps(body).encode(),
                headers={"Authorization": "Bearer t", "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.read()

        errors, made = [], [0]
        lock = threading.Lock()

        def wake(start, stop):
            for index in range(start, stop):
                try:
                    call("PUT", f"/v1/workspaces/s{index}", {})
                    call("POST", f"/v1/workspaces/s{index}/shells", {})
                except Exception as error:  # noqa: BLE001 - reported, the run goes on
                    errors.append(str(error)[:200])
                with lock:
                    made[0] += 1
                    if made[0] % 100 == 0:
                        print(f"\rawake {made[0]}/{arguments.workspaces}", end="", flush=True)

        count = arguments.workspaces
        threads = [threading.Thread(target=wake, args=(k * count // 4, (k + 1) * count // 4)) for k in range(4)]
        began = time.time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(f"\rwoke {count} workspaces with a shell each in {time.time() - began:.0f} s, {len(errors)} errors")
        began = time.time()
        server.terminate()
        status = server.wait(timeout=120)
        print(f"SIGTERM: exit status {status} after {time.time() - began:.1f} s")
        log.close()
        with open(log_path) as text:
            print("the end of the server's log:\n" + text.read()[-800:])
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        # A stop that left its sleeps leaves the pool mounted, as a crash does: unmount it before removing the files.
        with open("/proc/self/mountinfo") as table:
            points = [fields[4] for fields in map(str.split, table) if fields[4].startswith(data + "/")]
        for point in sorted(points, reverse=True):
            subprocess.run(["umount", "-l", point], check=False)
        shutil.rmtree(data, ignore_errors=True)
        if os.path.exists(log_path):
            os.remove(log_path)


if __name__ == "__main__":
    main()
