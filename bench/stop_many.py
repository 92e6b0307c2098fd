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
import threading
import time

from scratch_server import ScratchServer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the agentbox binary")
    parser.add_argument("--workspaces", type=int, default=1000, help="how many workspaces to wake, each with a shell (default 1000)")
    arguments = parser.parse_args()
    with ScratchServer(arguments.bin, ["--log-level", "warning"], prefix="agentbox-stop.") as server:
        errors, made = [], [0]
        lock = threading.Lock()

        def wake(start, stop):
            for index in range(start, stop):
                try:
                    server.call("PUT", f"/v1/workspaces/s{index}", {})
                    server.call("POST", f"/v1/workspaces/s{index}/shells", {})
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
        status, seconds = server.stop()
        print(f"SIGTERM: exit status {status} after {seconds:.1f} s")
        print("the end of the server's log:\n" + server.log_tail())


if __name__ == "__main__":
    main()
