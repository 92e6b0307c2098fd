#!/usr/bin/env python3
"""The cluster's figures (issue 25), side by side in one run:

- a request to a workspace through a node that does not own it, against the same request to its owner (p50, p99):
  GET of the workspace (JSON), and an exec of `true`;
- failover: kill -9 of the owner → the first successful exec through another node (the lease is --lease-ms).

Usage: python3 bench/cluster.py --bin .build/release/agentbox --postgres URL --weed PATH [--requests N] [--lease-ms MS]
(bash bench/cluster.sh does the set-up: Postgres and weed from scripts/setup-*.sh, a release build).
Standard library only."""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.parse

from scratch_server import unmount_under

ACCESS, SECRET = "bench", "bench-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class API:
    def __init__(self, endpoint):
        url = urllib.parse.urlparse(endpoint)
        self.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=120)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        self.connection.request(method, path, body=data, headers={"content-type": "application/json", "authorization": "Bearer t"})
        response = self.connection.getresponse()
        text = response.read()
        return response.status, text


def timed(call):
    start = time.perf_counter()
    status, text = call()
    elapsed = (time.perf_counter() - start) * 1000
    if status >= 400:
        raise RuntimeError(f"{status} {text[:300]!r}")
    return elapsed


def quantiles(samples):
    ordered = sorted(samples)
    return {"p50": statistics.median(ordered), "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]}


def start_weed(weed, work):
    data = os.path.join(work, "weed")
    os.makedirs(os.path.join(data, "data"))
    with open(os.path.join(data, "s3.json"), "w") as f:
        json.dump({"identities": [{"name": "bench", "credentials": [{"accessKey": ACCESS, "secretKey": SECRET}],
                                   "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, f)
    ports = [free_port() for _ in range(8)]
    process = subprocess.Popen(
        [weed, "server", f"-dir={data}/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-master.port={ports[0]}",
         f"-master.port.grpc={ports[1]}", "-master.volumeSizeLimitMB=64", f"-volume.port={ports[2]}", f"-volume.port.grpc={ports[3]}",
         "-volume.max=0", "-volume.preStopSeconds=0", "-filer", f"-filer.port={ports[4]}", f"-filer.port.grpc={ports[5]}", "-s3", f"-s3.port={ports[6]}",
         f"-s3.port.grpc={ports[7]}", "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={data}/s3.json"],
        stdout=open(os.path.join(data, "weed.log"), "w"), stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{ports[6]}"
    for _ in range(300):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", ports[6], timeout=2)
            connection.request("GET", "/")
            if connection.getresponse().status in (200, 403):
                time.sleep(2)  # the volume server registers a moment after the S3 port opens
                return process, endpoint
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("weed did not start")


def start_node(binary, work, index, store, blobs, lease_ms, uid_base):
    data = os.path.join(work, f"node{index}")
    os.makedirs(data)
    out = os.path.join(data, "out")
    environment = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY=SECRET)
    with open(out, "w") as o:
        process = subprocess.Popen(
            [binary, "serve", "--port", "0", "--data-dir", os.path.join(data, "data"), "--token", "t", "--log-level", "warning",
             "--store", store, "--node-id", f"n{index}", "--lease-ms", str(lease_ms), "--blobs", blobs,
             "--checkpoint-interval-ms", "0", "--sandbox-uid-base", str(uid_base), "--idle-grace", "30m"],
            stdout=o, stderr=open(os.path.join(data, "log"), "w"), env=environment)
    for _ in range(600):
        with open(out) as o:
            match = re.search(r"http://[\d.]+:\d+", o.read())
        if match:
            return process, match.group(0)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"node {index} did not start; see {data}/log")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--postgres", required=True, help="an admin URL of a Postgres server (a database is made for the run)")
    parser.add_argument("--weed", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--lease-ms", type=int, default=3000)
    parser.add_argument("--command", default="bash bench/cluster.sh")
    arguments = parser.parse_args()
    work = tempfile.mkdtemp(prefix="agentbox-cluster.", dir="/var/tmp")
    os.chmod(work, 0o755)
    database = f"ab_bench_{random.randrange(1 << 30)}"
    subprocess.run(["psql", arguments.postgres, "-q", "-c", f"CREATE DATABASE {database}"], check=True)
    store = arguments.postgres.rsplit("/", 1)[0] + "/" + database
    weed, s3 = start_weed(arguments.weed, work)
    blobs = f"s3://bench?endpoint={s3}"
    uid_base = 100_000_000 + random.randrange(15_000) * 262_144
    nodes = []
    try:
        nodes = [start_node(arguments.bin, work, i, store, blobs, arguments.lease_ms, uid_base) for i in (1, 2)]
        owner, other = API(nodes[0][1]), API(nodes[1][1])
        assert owner.call("PUT", "/v1/workspaces/w", {})[0] in (200, 201)
        owner.call("POST", "/v1/workspaces/w/exec", {"command": "true"})
        results = {}
        for name, call in [
            ("GET /v1/workspaces/w", lambda api: api.call("GET", "/v1/workspaces/w")),
            ("exec `true`", lambda api: api.call("POST", "/v1/workspaces/w/exec", {"command": "true"})),
        ]:
            for api in (owner, other):  # warm both paths
                for _ in range(50):
                    timed(lambda: call(api))
            direct, forwarded = [], []
            for _ in range(arguments.requests):  # alternately, so both see the same machine
                direct.append(timed(lambda: call(owner)))
                forwarded.append(timed(lambda: call(other)))
            results[name] = (quantiles(direct), quantiles(forwarded))
        # Failover: the owner is killed; the first exec through the other node that succeeds.
        owner.call("POST", "/v1/workspaces/w/sleep")  # a checkpoint on sleep
        time.sleep(1)
        os.kill(nodes[0][0].pid, signal.SIGKILL)
        killed = time.perf_counter()
        while True:
            try:
                status, _ = API(nodes[1][1]).call("POST", "/v1/workspaces/w/exec", {"command": "true"})
                if status < 400:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        failover = (time.perf_counter() - killed) * 1000
    finally:
        for process, _ in nodes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        weed.terminate()  # its graceful stop can hang: SIGKILL after 5 s
        try:
            weed.wait(timeout=5)
        except subprocess.TimeoutExpired:
            weed.kill()
            weed.wait()
        subprocess.run(["psql", arguments.postgres, "-q", "-c", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"])
        # The node killed with -9 left its disk pool mounted (and its loop device attached): unmount what is left.
        unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)
    print(f"Command: `{arguments.command}` ({arguments.requests} requests each, alternately; lease {arguments.lease_ms} ms)\n")
    print("| request | to the owner p50 / p99 | through another node p50 / p99 | added p50 | goal |")
    print("|---|---|---|---|---|")
    for name, (direct, forwarded) in results.items():
        added = forwarded["p50"] - direct["p50"]
        print(f"| {name} | {direct['p50']:.2f} / {direct['p99']:.2f} ms | {forwarded['p50']:.2f} / {forwarded['p99']:.2f} ms "
              f"| {added:.2f} ms | ≤ 1 ms: {'met' if added <= 1 else 'missed'} |")
    goal = arguments.lease_ms + 2000
    print(f"| failover: kill -9 of the owner → first exec through another node | | {failover:.0f} ms | | ≤ lease + 2 s ({goal} ms): "
          f"{'met' if failover <= goal else 'missed'} |")


if __name__ == "__main__":
    main()
