#!/usr/bin/env python3
"""Sandbox.create() + commands.run("echo hi") through E2B's own SDK against AgentBox, beside the same through
AgentBox's own API (PUT /v1/workspaces/{key} + POST .../exec from Python's standard library, as the SDK's transport
would) and its CLI (`agentbox workspaces create` + `agentbox exec`, processes started per call).

Run it with the Python of an E2B environment (scripts/setup-e2b.sh):
    .build/e2b/e2b-2.63.0/bin/python bench/e2b_sdk.py --bin .build/release/agentbox --iterations 50
It starts `agentbox serve` on a free loopback port with a fresh data directory, and prints p50/p95/min per path.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--bin", default=".build/debug/agentbox")
parser.add_argument("--iterations", type=int, default=30)
arguments = parser.parse_args()

token = "0123456789abcdef0123456789abcdef"
data = tempfile.mkdtemp(prefix="agentbox-bench-e2b-")
os.chmod(data, 0o755)  # the sandboxes' own uids must pass through to their directories
server = subprocess.Popen(
    [arguments.bin, "serve", "--port", "0", "--data-dir", os.path.join(data, "data"), "--token", token, "--log-level", "error"],
    stdout=subprocess.PIPE,
    text=True,
)
line = server.stdout.readline().strip()
if not line:
    raise SystemExit("agentbox serve did not start (run it by hand with the same arguments to see why)")
port = int(line.split(":")[-1])
url = f"http://127.0.0.1:{port}"
os.environ.update({"E2B_API_URL": url, "E2B_SANDBOX_URL": url, "E2B_API_KEY": "e2b_" + token, "E2B_DEBUG": "false"})
from e2b import Sandbox  # noqa: E402 — after the environment is set


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure(name, once):
    once(-1)  # warm-up: the first of each path pays one-time costs (the sandbox /etc cache, imports)
    samples = []
    for index in range(arguments.iterations):
        started = time.perf_counter()
        once(index)
        samples.append((time.perf_counter() - started) * 1000)
    result = {
        "path": name,
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(percentile(samples, 0.95), 2),
        "min_ms": round(min(samples), 2),
        "n": len(samples),
    }
    print(json.dumps(result), flush=True)
    return result


def e2b_sdk(index):
    sandbox = Sandbox.create()
    assert sandbox.commands.run("echo hi").stdout == "hi\n"


def v1_http(index):
    key = f"bench-v1-{index + 1}"
    request = urllib.request.Request(f"{url}/v1/workspaces/{key}", method="PUT", data=b"{}")
    request.add_header("Authorization", "Bearer " + token)
    request.add_header("Content-Type", "application/json")
    urllib.request.urlopen(request).read()
    request = urllib.request.Request(f"{url}/v1/workspaces/{key}/exec", method="POST", data=json.dumps({"command": "echo hi"}).encode())
    request.add_header("Authorization", "Bearer " + token)
    request.add_header("Content-Type", "application/json")
    assert json.loads(urllib.request.urlopen(request).read())["stdout"] == "hi\n"


def cli(index):
    key = f"bench-cli-{index + 1}"
    environment = dict(os.environ, AGENTBOX_ENDPOINT=url, AGENTBOX_TOKEN=token)
    subprocess.run([arguments.bin, "workspaces", "create", key], env=environment, check=True, stdout=subprocess.DEVNULL)
    output = subprocess.run([arguments.bin, "exec", key, "--", "echo hi"], env=environment, check=True, capture_output=True, text=True)
    assert output.stdout == "hi\n"


try:
    results = [measure("e2b SDK 2.x: Sandbox.create() + commands.run", e2b_sdk), measure("AgentBox /v1: PUT workspace + exec", v1_http), measure("agentbox CLI: workspaces create + exec", cli)]
finally:
    server.terminate()
    server.wait()
    shutil.rmtree(data, ignore_errors=True)
