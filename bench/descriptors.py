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
import os
import re
import time

from scratch_server import ScratchServer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the agentbox binary")
    parser.add_argument("--workspaces", type=int, default=50, help="how many workspaces to wake (default 50)")
    arguments = parser.parse_args()
    # Plain directories: the disk pool holds one descriptor in all, none per workspace.
    with ScratchServer(arguments.bin, ["--blank-workspaces", "0", "--disk-pool", "none"], prefix="agentbox-descriptors.") as server:

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

        server.call("PUT", "/v1/workspaces/warm", {})
        server.call("POST", "/v1/workspaces/warm/exec", {"command": "true"})
        time.sleep(1)
        base = descriptors()
        count = arguments.workspaces
        for index in range(count):
            server.call("PUT", f"/v1/workspaces/w{index}", {})
            server.call("POST", f"/v1/workspaces/w{index}/exec", {"command": "true"})
            print(f"\rwoken {index + 1}/{count}", end="", flush=True)
        time.sleep(1)
        awake = descriptors()
        for index in range(count):
            server.call("POST", f"/v1/workspaces/w{index}/shells", {})
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


if __name__ == "__main__":
    main()
