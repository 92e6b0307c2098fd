#!/usr/bin/env python3
"""Cold start (issue 3's benchmark): create a workspace and run a first `echo hello` over HTTP, N times; the boot of
an existing sleeping workspace plus an echo; a warm exec; and, in the same run, the floors: a bare bubblewrap spawn
of `true` and a posix_spawn of `true`. One keep-alive connection, as an SDK would hold. Standard library only.
Usage: cold_start.py ENDPOINT [N]"""
import http.client, json, statistics, subprocess, sys, time, urllib.parse

endpoint = urllib.parse.urlparse(sys.argv[1])
count = int(sys.argv[2]) if len(sys.argv) > 2 else 100
connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port)

def call(method, path, body=None):
    connection.request(method, path, body=None if body is None else json.dumps(body),
                       headers={"content-type": "application/json"})
    response = connection.getresponse()
    text = response.read()
    if response.status >= 400:
        raise RuntimeError(f"{method} {path}: {response.status} {text!r}")
    return json.loads(text) if text else None

def row(name, samples):
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"| {name} | {statistics.median(samples):.2f} ms | {pick(0.95):.2f} ms | {pick(0.99):.2f} ms | "
          f"{samples[0]:.2f} ms |")

def timed(action):
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000

def floor(command):
    return [timed(lambda: subprocess.run(command, check=True)) for _ in range(count)]

create, wake, warm = [], [], []
for i in range(count):
    def first():
        call("PUT", f"/v1/workspaces/cold-{i}", {})
        assert call("POST", f"/v1/workspaces/cold-{i}/exec", {"command": "echo hello"})["stdout"] == "hello\n"
    create.append(timed(first))
    warm.append(timed(lambda: call("POST", f"/v1/workspaces/cold-{i}/exec", {"command": "true"})))
    call("POST", f"/v1/workspaces/cold-{i}/sleep")
for i in range(count):
    wake.append(timed(lambda: call("POST", f"/v1/workspaces/cold-{i}/exec", {"command": "echo hello"})))
    call("DELETE", f"/v1/workspaces/cold-{i}")
bwrap = floor(["bwrap", "--unshare-all", "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
               "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin", "--", "/usr/bin/true"])
spawn = floor(["/usr/bin/true"])
print(f"| measure ({count} runs) | p50 | p95 | p99 | min |")
print("|---|---|---|---|---|")
row("create + first `echo hello` over HTTP", create)
row("boot of a sleeping workspace + `echo hello`", wake)
row("floor: bare `bwrap --unshare-all … true`", bwrap)
row("warm exec of `true` over HTTP", warm)
row("floor: posix_spawn of `true` (Python subprocess)", spawn)
