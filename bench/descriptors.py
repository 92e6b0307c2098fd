#!/usr/bin/env python3
"""The server's open descriptors per awake workspace, and per shell on top, by kind (issue 28, item 4).

Starts `agentbox serve` on a fresh data directory, wakes one workspace to warm the server up, then wakes N more
(one `true` each) and opens a shell in each, counting /proc/PID/fd after each step and naming what was added
(`socket`, `pipe`, `/dev/pts/ptmx`, a namespace, or `/` for a detached mount). The descriptor limit of a process
(`ulimit -n`) bounds how many workspaces one server keeps awake: this says how many each one takes.

Example:
    python3 bench/descriptors.py --bin .build-release/release/agentbox --workspaces 50
"""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the agentbox binary")
    parser.add_argument("--workspaces", type=int, default=50, help="how many workspaces to wake (default 50)")
    arguments = parser.parse_args()
    data = tempfile.mkdtemp(prefix="agentbox-descriptors.", dir="/var/tmp")
    os.chmod(data, 0o755)  # the workspaces' own uids pass through it
    log = open(os.path.join(data, "serve.log"), "w")
    # Plain directories: the disk pool holds one descriptor in all, none per workspace.
    server = subprocess.Popen(
        [arguments.bin, "serve", "--port", "0", "--data-dir", data, "--token", "t", "--blank-workspaces", "0", "--disk-pool", "none"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = server.stdout.readline()
        while line and "listening" not in line:
            line = server.stdout.readline()
        if not line:
            raise SystemExit(f"the server did not start; see {data}/serve.log")
        port = re.search(r":(\d+)", line).group(1)

        def call(method, path, body=None):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}", method=method, data=None if body is None else json.dumps(body).encode(),
                headers={"Authorization": "Bearer t", "Content-Type": "application/json"})
            with urllib.request.urlopen(request) as response:
                return json.loads(response.read() or b"null")

        def descriptors():
            table = {}
            for name in os.listdir(f"/proc/{server.pid}/fd"):
                try:
                    table[name] = os.readlink(f"/proc/{server.pid}/fd/{name}")
                except OSError:
                    pass
            return table

        def added(before, after):
            return dict(collections.Counter(re.sub(r"\d+", "N", target) for name, target in after.items() if before.get(name) != target))

        call("PUT", "/v1/workspaces/warm", {})
        call("POST", "/v1/workspaces/warm/exec", {"command": "true"})
        time.sleep(1)
        base = descriptors()
        count = arguments.workspaces
        for index in range(count):
            call("PUT", f"/v1/workspaces/w{index}", {})
            call("POST", f"/v1/workspaces/w{index}/exec", {"command": "true"})
            print(f"\rwoken {index + 1}/{count}", end="", flush=True)
        time.sleep(1)
        awake = descriptors()
        for index in range(count):
            call("POST", f"/v1/workspaces/w{index}/shells", {})
            print(f"\rshells {index + 1}/{count}", end="", flush=True)
        time.sleep(1)
        shells = descriptors()
        print()
        print(f"Command: `python3 bench/descriptors.py --bin {arguments.bin} --workspaces {count}`\n")
        print("| | descriptors per workspace | what was added, for all of them |")
        print("|---|---|---|")
        print(f"| awake (after one exec) | {(len(awake) - len(base)) / count:.2f} | {added(base, awake)} |")
        print(f"| a shell on top | {(len(shells) - len(awake)) / count:.2f} | {added(awake, shells)} |")
        print(f"\nThe server held {len(base)} before them.")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
