#!/usr/bin/env python3
"""Cold start (issue 3's benchmark): create a workspace and run a first `echo hello` over HTTP, N times, and the
boot of an existing sleeping workspace plus an echo. Standard library only. Usage: cold_start.py ENDPOINT [N]"""
import json, statistics, sys, time, urllib.request

endpoint = sys.argv[1].rstrip("/")
count = int(sys.argv[2]) if len(sys.argv) > 2 else 100

def call(method, path, body=None):
    request = urllib.request.Request(endpoint + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request) as response:
        text = response.read()
        return json.loads(text) if text else None

def stats(name, samples):
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"| {name} ({len(samples)} runs) | p50 {statistics.median(samples):.2f} ms | p95 {pick(0.95):.2f} ms | "
          f"p99 {pick(0.99):.2f} ms | min {samples[0]:.2f} ms |")

create, wake = [], []
for i in range(count):
    start = time.perf_counter()
    call("PUT", f"/v1/workspaces/cold-{i}", {})
    result = call("POST", f"/v1/workspaces/cold-{i}/exec", {"command": "echo hello"})
    create.append((time.perf_counter() - start) * 1000)
    assert result["stdout"] == "hello\n", result
    call("POST", f"/v1/workspaces/cold-{i}/sleep")
for i in range(count):
    start = time.perf_counter()
    call("POST", f"/v1/workspaces/cold-{i}/exec", {"command": "echo hello"})
    wake.append((time.perf_counter() - start) * 1000)
    call("DELETE", f"/v1/workspaces/cold-{i}")
stats("create + first `echo hello`", create)
stats("boot of a sleeping workspace + `echo hello`", wake)
