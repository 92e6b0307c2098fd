#!/usr/bin/env python3
"""Memory per awake idle workspace (issue 3's and 9's benchmark): wakes N workspaces one by one (each runs one
`true` and then idles), and after each step sums the RSS and the PSS of the server and of every process in the
workspaces' sandboxes (bwrap and the sandbox init). The slope per workspace is reported, plus the same for
sleeping workspaces (records only). Needs the server's pid. Usage: memory.py ENDPOINT SERVER_PID [N]"""
import http.client, json, os, statistics, sys, time, urllib.parse

endpoint = urllib.parse.urlparse(sys.argv[1])
server_pid = int(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 100
connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port)

def call(method, path, body=None):
    connection.request(method, path, body=None if body is None else json.dumps(body), headers={"content-type": "application/json"})
    response = connection.getresponse()
    text = response.read()
    if response.status >= 400:
        raise RuntimeError(f"{method} {path}: {response.status} {text!r}")
    return json.loads(text) if text else None

def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack += children.get(current, [])
    return found

def memory(pids):
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"): rss += int(line.split()[1])
                    elif line.startswith("Pss:"): pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss

def slope(points):  # least squares, KiB per workspace
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)

awake = []
for i in range(count + 1):
    if i > 0:
        call("PUT", f"/v1/workspaces/mem-{i}", {})
        call("POST", f"/v1/workspaces/mem-{i}/exec", {"command": "true"})
    time.sleep(0.05)
    rss, pss = memory(descendants(server_pid))
    awake.append((i, rss, pss))
sandboxes = len(descendants(server_pid)) - 1
for i in range(1, count + 1):
    call("POST", f"/v1/workspaces/mem-{i}/sleep")
time.sleep(0.5)
_, rss_sleeping, pss_sleeping = (0, *memory(descendants(server_pid)))
for i in range(1, count + 1):
    call("DELETE", f"/v1/workspaces/mem-{i}")
rss_slope = slope([(i, r) for i, r, _ in awake]) / 1024
pss_slope = slope([(i, p) for i, _, p in awake]) / 1024
print(f"| awake idle workspaces: {count} ({sandboxes} sandbox processes) | RSS {rss_slope:.2f} MB each | PSS {pss_slope:.2f} MB each |")
print(f"| server + sandboxes with {count} awake | RSS {awake[-1][1] / 1024:.1f} MB | PSS {awake[-1][2] / 1024:.1f} MB |")
print(f"| the same {count} asleep (sandboxes gone) | RSS {rss_sleeping / 1024:.1f} MB | PSS {pss_sleeping / 1024:.1f} MB |")
