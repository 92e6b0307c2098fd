#!/usr/bin/env python3
"""Cold start and warm exec of two builds side by side: `python3 bench/ab_cold.py --a BIN --b BIN [-n 300]` (root,
bubblewrap).

Starts a server of each build (`bench/harness.py`'s `Server`, fresh data directories) and, alternating between them in a
random order every iteration, times create + first `echo hello` and the boot of a sleeping workspace + `echo hello`
over one keep-alive connection each, and a warm `echo hello` in the workspace just woken. The machine's load then falls on both alike, which a run of one build after the
other cannot promise on a shared machine. Also reports the CPU time of each server and of everything it reaped
(bwrap, the sandbox's init, the echo) per iteration, which load disturbs less than latency.
"""
import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import API, Server, timed  # noqa: E402


def cpu_seconds(pid):
    """utime + stime + cutime + cstime of `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="the first agentbox binary (release build)")
    parser.add_argument("--b", required=True, help="the second agentbox binary")
    parser.add_argument("-n", type=int, default=300, help="iterations (each boots twice per build)")
    parser.add_argument("--a-arg", action="append", default=[], metavar="ARG",
                        help="an extra argument of the first server's serve (repeatable), e.g. --a-arg=--sandbox-pool=4; "
                             "with the same binary for --a and --b, two settings side by side")
    parser.add_argument("--b-arg", action="append", default=[], metavar="ARG", help="the same for the second server")
    arguments = parser.parse_args()
    servers, works = {}, []
    try:
        for name, binary, extra in (("a", arguments.a, arguments.a_arg), ("b", arguments.b, arguments.b_arg)):
            works.append(tempfile.mkdtemp(prefix=f"agentbox-ab-{name}-"))
            os.chmod(works[-1], 0o755)  # workspaces run as their own uids and must pass through
            servers[name] = Server(binary, works[-1], extra)
        apis = {name: API(server.endpoint) for name, server in servers.items()}
        for api in apis.values():  # warm-up
            api.call("PUT", "/v1/workspaces/warm", {})
            api.call("POST", "/v1/workspaces/warm/exec", {"command": "true"})
            api.call("DELETE", "/v1/workspaces/warm")
        create = {name: [] for name in servers}
        wake = {name: [] for name in servers}
        warm = {name: [] for name in servers}
        before = {name: cpu_seconds(server.pid) for name, server in servers.items()}
        for i in range(arguments.n):
            order = list(servers)
            random.shuffle(order)
            for name in order:
                api = apis[name]

                def first():
                    api.call("PUT", f"/v1/workspaces/ab-{i}", {})
                    assert api.call("POST", f"/v1/workspaces/ab-{i}/exec", {"command": "echo hello"})["stdout"] == "hello\n"

                create[name].append(timed(first))
                api.call("POST", f"/v1/workspaces/ab-{i}/sleep")
                wake[name].append(timed(lambda: api.call("POST", f"/v1/workspaces/ab-{i}/exec", {"command": "echo hello"})))
                warm[name].append(timed(lambda: api.call("POST", f"/v1/workspaces/ab-{i}/exec", {"command": "echo hello"})))
                api.call("DELETE", f"/v1/workspaces/ab-{i}")
        after = {name: cpu_seconds(server.pid) for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
        for work in works:
            shutil.rmtree(work, ignore_errors=True)

    def p90(samples):
        return sorted(samples)[int(0.9 * len(samples))]

    def p99(samples):
        return sorted(samples)[min(len(samples) - 1, int(0.99 * len(samples)))]

    for name, binary, extra in (("a", arguments.a, arguments.a_arg), ("b", arguments.b, arguments.b_arg)):
        ratio = lambda samples: statistics.median(samples) / statistics.median(warm[name])
        print(f"{name} ({binary} {' '.join(extra)}): create + echo p50 {statistics.median(create[name]):.2f} ms, p90 {p90(create[name]):.2f} ms, "
              f"p99 {p99(create[name]):.2f} ms ({ratio(create[name]):.2f}× warm); "
              f"wake + echo p50 {statistics.median(wake[name]):.2f} ms, p90 {p90(wake[name]):.2f} ms, p99 {p99(wake[name]):.2f} ms "
              f"({ratio(wake[name]):.2f}× warm); "
              f"warm echo p50 {statistics.median(warm[name]):.2f} ms, p90 {p90(warm[name]):.2f} ms; "
              f"CPU per iteration {(after[name] - before[name]) / arguments.n * 1000:.2f} ms")


if __name__ == "__main__":
    main()
