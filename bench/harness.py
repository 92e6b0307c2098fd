#!/usr/bin/env python3
"""The AgentBox benchmark harness (issue 9). Run it through `bash bench/run.sh`, which builds the release binaries
and installs what the harness needs (wrk, matplotlib); see BENCHMARKS.md.

It starts the real server (the release build) on loopback with a fresh data directory, and measures, each beside a
floor measured in the same run:
  cold start      create a workspace + first `echo hello` over HTTP; boot of a sleeping one + echo   (against the
                  warm exec of the same run, issue 28: ≤ 1.5× at p50; floor: bwrap `true`)
  warm exec       `true` over HTTP                                                  (floor: posix_spawn of `true`)
  memory          a staircase of awake idle workspaces (RSS and PSS of the server and every sandbox process), the
                  same asleep, and N awake at once
  sessions        a mock agent's turn of N events through the server (agent → ACP → SQLite → subscribers), and the
                  latency of a 100-event page over HTTP at the end of it (1 M events in the full run)
  fan-out         N concurrent SSE subscribers to one session, each of which must receive every event
  previews        wrk through a preview URL against wrk on the workspace's own loopback
  files           upload and download of a large file against cp; a tar upload of many small files against tar -x;
                  snapshot and fork
  images          a workspace with N MB of files under /usr/local frozen as an image; create + first exec of workspaces
                  made from it against plain ones, alternately, in one run
  registered      a server of its own (no disk pool) with N registered workspaces, W of them woken and put back to
                  sleep: the server's RSS per sleeping workspace once their retention is over, GET of one
                  workspace by key at that count, and every page of the list
  cron            the server's CPU while N cron jobs wait for a slot (none due) against none, and how late runs of a
                  job every second start after their slot
  metrics         a server of its own with N registered workspaces (none booted): GET /metrics scrapes, p50/p99
                  (issue 20: ≤ 50 ms), and that the scrape counts every one of them as sleeping
  toolkits        N tool calls from an agentbox-{toolkit} command inside a workspace to an http handler on the host's
                  loopback (p50, p99, beside spawning `true` there), then N at once, then N as MCP tool calls through
                  the toolkit MCP server an agent session gets (/.agentbox/bin/tool mcp)
  gateway         the LLM gateway on a server of its own, a scripted model server upstream: N non-streaming calls
                  through it against straight to the upstream (issue 22: ≤ 1 ms added at p50), then M streamed calls
                  at once, each checked whole
  throughput      N workspaces each running `true` execs back to back, all at once (N requests in flight): execs/s
                  and latency, against N threads of bare posix_spawn `true` and of bare bwrap `true` (bench/spawn_floor.c)
  awake           N workspaces awake at once, each with one idle shell (10,000 in the full run): the memory of the
                  server and of every sandbox process, that all are running, and exec latency in a sample meanwhile
  neighbours      N workspaces running `echo` exec loops at once (bounded concurrency, keep-alive): errors (none
                  allowed) and latency; and an idle workspace's exec every 100 ms during that load against without it
Results: a JSON file, a Markdown summary and a PNG of the cold-start latency distribution in the output directory.
Standard library only, plus matplotlib for the plot."""
import argparse, asyncio, datetime, http.client, json, multiprocessing, os, platform, re, shutil, statistics, subprocess, sys
import resource, tempfile, time, urllib.parse

# ---------------------------------------------------------------------------------------------------------- helpers


def summary(samples):
    """median, p95, p99, min and max of a list of milliseconds (nearest-rank percentiles)."""
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]
    return {"n": len(ordered), "p50": statistics.median(ordered), "p95": pick(0.95), "p99": pick(0.99),
            "min": ordered[0], "max": ordered[-1]}


def timed(action):
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def log(text):
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class API:
    """One keep-alive HTTP/1.1 connection, as an SDK holds one."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        url = urllib.parse.urlparse(endpoint)
        self.host, self.port = url.hostname, url.port
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=600)

    def call(self, method, path, body=None, raw=None, headers=None, expect_json=True):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        sent = {"content-type": "application/octet-stream" if raw is not None else "application/json"}
        sent.update(headers or {})
        self.connection.request(method, path, body=data, headers=sent)
        response = self.connection.getresponse()
        text = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {text[:500]!r}")
        if not expect_json:
            return text
        return json.loads(text) if text else None


class Server:
    """The release server, on a free loopback port, with its own data directory."""

    def __init__(self, binary, work, extra=()):
        self.data = os.path.join(work, "data")
        self.log = open(os.path.join(work, "server.log"), "w")
        self.out = os.path.join(work, "server.out")
        with open(self.out, "w") as out:
            self.process = subprocess.Popen(
                [binary, "serve", "--port", "0", "--data-dir", self.data, "--no-token", "--log-level", "warning",
                 "--idle-grace", "30m", *extra],
                stdout=out, stderr=self.log)
        match = None
        for _ in range(600):
            with open(self.out) as out:
                match = re.search(r"http://[\d.]+:\d+", out.read())
            if match or self.process.poll() is not None:
                break
            time.sleep(0.05)
        if not match:
            raise RuntimeError(f"the server did not start; see {self.log.name}")
        self.endpoint = match.group(0)
        self.pid = self.process.pid

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


# ------------------------------------------------------------------------------------------------------- cold start


def blank_workspaces(api):
    """How many blank workspaces the server has ready (`agentbox_blank_workspaces`)."""
    found = re.search(rb"\nagentbox_blank_workspaces (\d+)", api.call("GET", "/metrics", expect_json=False))
    return int(found.group(1)) if found else 0


def wait_for_blanks(api, capacity):
    """Asks until the server's blank workspaces are back to `capacity` (at most 5 s): a create then finds one ready, and
    nothing is being made beside the request measured. Asking keeps the machine as busy as the measured loop."""
    deadline = time.monotonic() + 5
    while capacity and blank_workspaces(api) < capacity and time.monotonic() < deadline:
        pass


def cold_start(api, count):
    """Create + first exec, with the server's blank workspaces ready (see --blank-workspaces), and back to back (each
    create's blank is still being made again while the next ones run); a warm exec; the wake of a workspace that has
    just gone to sleep (its sandbox parked, see --parked-sandboxes); and, once all `count` sleep, the wake of each in the
    order they slept (past the parked sandboxes' capacity, the oldest have none left: a pre-started sandbox is bound to
    them)."""
    create, busy, wake, warm, recent = [], [], [], [], []
    # The server makes its blanks at start: their number once it stops growing (none after 2 s: it keeps none).
    started, capacity = time.monotonic(), blank_workspaces(api)
    while time.monotonic() < started + 10:
        time.sleep(0.1)
        now = blank_workspaces(api)
        if now == capacity and (now > 0 or time.monotonic() > started + 2):
            break
        capacity = max(capacity, now)
    for i in range(count):
        def first():
            api.call("PUT", f"/v1/workspaces/cold-{i}", {})
            assert api.call("POST", f"/v1/workspaces/cold-{i}/exec", {"command": "echo hello"})["stdout"] == "hello\n"
        wait_for_blanks(api, capacity)
        create.append(timed(first))
        wait_for_blanks(api, capacity)
        warm.append(timed(lambda: api.call("POST", f"/v1/workspaces/cold-{i}/exec", {"command": "true"})))
        api.call("POST", f"/v1/workspaces/cold-{i}/sleep")
        recent.append(timed(lambda: api.call("POST", f"/v1/workspaces/cold-{i}/exec", {"command": "echo hello"})))
        api.call("POST", f"/v1/workspaces/cold-{i}/sleep")
    for i in range(count):
        wake.append(timed(lambda: api.call("POST", f"/v1/workspaces/cold-{i}/exec", {"command": "echo hello"})))
        api.call("DELETE", f"/v1/workspaces/cold-{i}")
    wait_for_blanks(api, capacity)
    for i in range(count):
        def back_to_back():
            api.call("PUT", f"/v1/workspaces/busy-{i}", {})
            assert api.call("POST", f"/v1/workspaces/busy-{i}/exec", {"command": "echo hello"})["stdout"] == "hello\n"
        busy.append(timed(back_to_back))
    for i in range(count):
        api.call("DELETE", f"/v1/workspaces/busy-{i}")
    bwrap_command = ["bwrap", "--unshare-all", "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
                     "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin", "--", "/usr/bin/true"]
    bwrap = [timed(lambda: subprocess.run(bwrap_command, check=True)) for _ in range(count)]
    spawn = [timed(lambda: subprocess.run(["/usr/bin/true"], check=True)) for _ in range(count)]
    return {"create_echo": create, "create_echo_back_to_back": busy, "blank_workspaces": capacity, "wake_echo": wake,
            "wake_recent_echo": recent, "warm_exec": warm, "floor_bwrap": bwrap, "floor_spawn": spawn}


# ---------------------------------------------------------------------------------------------------------- desktop


def desktop(api, starts, shots):
    """Display start (Xvfb + Openbox in an awake workspace, until the server's X connection is up) and 1280x800
    screenshots (PNG) of a desktop with an xterm full of text on it, over HTTP with keep-alive."""
    key = "desktop-bench"
    api.call("PUT", f"/v1/workspaces/{key}", {})
    api.call("POST", f"/v1/workspaces/{key}/exec", {"command": "true"})  # awake: the start alone is measured
    start_ms = []
    for _ in range(starts):
        start_ms.append(timed(lambda: api.call("POST", f"/v1/workspaces/{key}/desktop", {"width": 1280, "height": 800})))
        api.call("DELETE", f"/v1/workspaces/{key}/desktop")
    api.call("POST", f"/v1/workspaces/{key}/desktop", {})
    api.call("POST", f"/v1/workspaces/{key}/processes", {"command": "xterm", "args": ["-geometry", "120x45+50+50", "-e", "sh", "-c", "ls -l /usr/bin | head -60; sleep 3600"]})
    for _ in range(200):  # until its window is on the screen (a first xterm loads its fonts)
        if api.call("GET", f"/v1/workspaces/{key}/desktop/windows")["items"]:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    png_bytes = []

    def shot():
        png_bytes.append(len(api.call("GET", f"/v1/workspaces/{key}/desktop/screenshot", expect_json=False)))

    shot()  # the first one
    shot_ms = [timed(shot) for _ in range(shots)]
    half_ms = [timed(lambda: api.call("GET", f"/v1/workspaces/{key}/desktop/screenshot?scale=0.5", expect_json=False))
               for _ in range(max(1, shots // 4))]
    api.call("DELETE", f"/v1/workspaces/{key}")
    return {"start_ms": start_ms, "screenshot_ms": shot_ms, "half_ms": half_ms, "png_bytes": statistics.median(png_bytes)}


# ----------------------------------------------------------------------------------------------------------- images


def images(api, count, image_mb):
    """A workspace that put image_mb MB (1 MB files) under /usr/local, frozen as an image; then, alternately, create +
    first `echo hello` of a plain workspace and of one made from the image."""
    api.call("PUT", "/v1/workspaces/image-builder", {})
    made = api.call("POST", "/v1/workspaces/image-builder/exec", {
        "command": f"mkdir -p /usr/local/share/bench && for i in $(seq 1 {image_mb}); do head -c 1048576 /dev/urandom "
                   f"> /usr/local/share/bench/f$i; done && du -sm /usr/local/share/bench", "timeoutMs": 600_000})
    assert made["exitCode"] == 0, made
    freeze = timed(lambda: api.call("POST", "/v1/images", {"name": "bench", "fromWorkspace": "image-builder"}))
    size = api.call("GET", "/v1/images/bench")["sizeBytes"]
    plain, from_image = [], []

    def first(key, config):
        api.call("PUT", f"/v1/workspaces/{key}", config)
        result = api.call("POST", f"/v1/workspaces/{key}/exec", {"command": "echo hello; test -s /usr/local/share/bench/f1 && echo image"})
        assert result["stdout"] in ("hello\n", "hello\nimage\n"), result

    for i in range(count):
        plain.append(timed(lambda: first(f"plain-{i}", {})))
        from_image.append(timed(lambda: first(f"from-image-{i}", {"image": "bench"})))
    assert "image" in api.call("POST", f"/v1/workspaces/from-image-0/exec", {"command": "test -s /usr/local/share/bench/f1 && echo image"})["stdout"]
    for i in range(count):
        api.call("DELETE", f"/v1/workspaces/plain-{i}")
        api.call("DELETE", f"/v1/workspaces/from-image-{i}")
    api.call("DELETE", "/v1/images/bench")
    api.call("DELETE", "/v1/workspaces/image-builder")
    return {"plain_create_echo": plain, "image_create_echo": from_image, "freeze_ms": freeze, "image_bytes": size}


# ----------------------------------------------------------------------------------------------------------- memory


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


def resident(pids):
    """Summed RSS and PSS in KiB."""
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def slope(points):
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def memory(api, server_pid, staircase, at_once):
    """Wakes workspaces one at a time (each runs `true`, then idles) and sums, after each, the memory of the server and
    of every sandbox process; the slope is one more awake workspace. Then wakes more until `at_once` are awake, checks
    each still answers, and puts them all to sleep."""
    time.sleep(0.5)
    steps = [(0, *resident(descendants(server_pid)))]
    for i in range(1, at_once + 1):
        api.call("PUT", f"/v1/workspaces/mem-{i}", {})
        api.call("POST", f"/v1/workspaces/mem-{i}/exec", {"command": "true"})
        if i <= staircase:
            time.sleep(0.02)
            steps.append((i, *resident(descendants(server_pid))))
    processes = len(descendants(server_pid)) - 1
    awake = sum(1 for i in range(1, at_once + 1)
                if api.call("GET", f"/v1/workspaces/mem-{i}")["state"] == "running")
    answered = sum(1 for i in range(1, at_once + 1)
                   if api.call("POST", f"/v1/workspaces/mem-{i}/exec", {"command": "echo $((6*7))"})["stdout"] == "42\n")
    at_once_rss, at_once_pss = resident(descendants(server_pid))
    for i in range(1, at_once + 1):
        api.call("POST", f"/v1/workspaces/mem-{i}/sleep")
    time.sleep(1)
    asleep_rss, asleep_pss = resident(descendants(server_pid))
    for i in range(1, at_once + 1):
        api.call("DELETE", f"/v1/workspaces/mem-{i}")
    return {
        "staircase": staircase, "steps": steps,
        "awake_rss_mb": slope([(i, r) for i, r, _ in steps]) / 1024 if staircase > 1 else None,
        "awake_pss_mb": slope([(i, p) for i, _, p in steps]) / 1024 if staircase > 1 else None,
        "at_once": at_once, "at_once_awake": awake, "at_once_answered": answered, "at_once_processes": processes,
        "at_once_rss_mb": at_once_rss / 1024, "at_once_pss_mb": at_once_pss / 1024,
        "baseline_rss_mb": steps[0][1] / 1024,
        "asleep_rss_mb": asleep_rss / 1024, "asleep_pss_mb": asleep_pss / 1024,
        "asleep_rss_per_workspace_kb": (asleep_rss - steps[0][1]) / at_once,
    }


def register_range(endpoint, start, stop, pipe):
    """The body of one registering process: PUTs workspaces reg-{start}..reg-{stop-1} on one keep-alive connection."""
    api = API(endpoint)
    for i in range(start, stop):
        api.call("PUT", f"/v1/workspaces/reg-{i}", {})
    pipe.send(stop - start)
    pipe.close()


def register_many(endpoint, count, parts=4):
    """PUTs workspaces reg-0..reg-{count-1} from `parts` processes at once (a keep-alive connection each); the number
    made."""
    bounds = [count * k // parts for k in range(parts + 1)]
    pipes, processes = [], []
    for k in range(parts):
        ours, theirs = multiprocessing.Pipe()
        process = multiprocessing.Process(target=register_range, args=(endpoint, bounds[k], bounds[k + 1], theirs))
        process.start()
        processes.append(process)
        pipes.append(ours)
    made = sum(pipe.recv() for pipe in pipes)
    for process in processes:
        process.join()
    return made


def registered(binary, work, count, woken, retention_s=2):
    """Issue 18: a sleeping workspace costs the server nothing but a row. A server of its own (`--disk-pool none`: a
    pool would make one btrfs subvolume per PUT, which is not what is measured) registers `count` workspaces (4
    connections), wakes `woken` of them with an exec and puts them back to sleep; after their retention
    (`--sleeping-retention`) the server's RSS per registered workspace, and per woken-then-slept one above that, and
    the latency of `GET /v1/workspaces/{key}` for random keys."""
    import random
    own = os.path.join(work, "registered")
    os.makedirs(own, exist_ok=True)
    server = Server(binary, own, ["--disk-pool", "none", "--sleeping-retention", f"{retention_s}s"])
    try:
        api = API(server.endpoint)
        api.call("GET", "/v1/workspaces?limit=1")
        time.sleep(0.5)
        base_rss, _ = resident([server.pid])
        start = time.perf_counter()
        made = register_many(server.endpoint, count)
        register_s = time.perf_counter() - start
        time.sleep(1)
        registered_rss, _ = resident([server.pid])
        sample = random.Random(18).sample(range(count), woken)
        for i in sample:
            api.call("POST", f"/v1/workspaces/reg-{i}/exec", {"command": "true"})
        awake_rss, _ = resident([server.pid])
        for i in sample:
            api.call("POST", f"/v1/workspaces/reg-{i}/sleep")
        time.sleep(retention_s + 1.5)
        slept_rss, _ = resident([server.pid])
        chooser = random.Random(7)
        gets = [timed(lambda: api.call("GET", f"/v1/workspaces/reg-{chooser.randrange(count)}")) for _ in range(2000)]
        # The whole list, page by page (100 a page, the default), as a client walks it: every page's latency.
        lists, listed, cursor = [], 0, None
        while True:
            path = "/v1/workspaces?limit=100" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
            start = time.perf_counter()
            page = api.call("GET", path)
            lists.append((time.perf_counter() - start) * 1000)
            listed += len(page["items"])
            cursor = page.get("nextCursor")
            if not cursor:
                break
        states = {api.call("GET", f"/v1/workspaces/reg-{i}")["state"] for i in sample}
    finally:
        server.stop()
    return {
        "registered": made, "woken": woken, "register_s": register_s, "register_per_s": made / register_s,
        "base_rss_mb": base_rss / 1024, "registered_rss_mb": registered_rss / 1024, "awake_rss_mb": awake_rss / 1024,
        "slept_rss_mb": slept_rss / 1024,
        "rss_per_registered_kb": (slept_rss - base_rss) / made,
        "rss_per_woken_then_slept_kb": (slept_rss - registered_rss) / woken,
        "get_ms": gets, "list_page_ms": lists, "listed": listed, "woken_states": sorted(states),
    }


# ------------------------------------------------------------------------------------------------------------- cron


def cron(api, server_pid, jobs, idle_seconds, fires):
    """Issue 20: one timer serves every job. The server's CPU over `idle_seconds` with no job scheduled, then with
    `jobs` scheduled for a slot far away (100 per workspace, none due), against the same wait before; then how late
    runs start after their slot: a job every second in a workspace of its own, `fires` runs."""
    def idle_cpu():
        # The process's own total (threads that ended included), in clock ticks: hence a window of many seconds.
        before = cpu_seconds([server_pid])
        time.sleep(idle_seconds)
        return cpu_seconds([server_pid]) - before

    baseline = idle_cpu()
    per_workspace = 100
    start = time.perf_counter()
    for n in range(jobs):
        key = f"cron-{n // per_workspace}"
        if n % per_workspace == 0:
            api.call("PUT", f"/v1/workspaces/{key}", {})
        api.call("POST", f"/v1/workspaces/{key}/cron", {"schedule": "0 0 1 1 *", "action": {"type": "exec", "command": "true"}})
    create_s = time.perf_counter() - start
    time.sleep(1)
    scheduled = idle_cpu()
    api.call("PUT", "/v1/workspaces/cron-ticker", {})
    api.call("POST", "/v1/workspaces/cron-ticker/exec", {"command": "true"})  # booted: the lateness is the scheduler's
    api.call("POST", "/v1/workspaces/cron-ticker/cron",
             {"id": "tick", "schedule": "* * * * * *", "action": {"type": "exec", "command": "true"}})
    time.sleep(fires + 1.5)
    api.call("PATCH", "/v1/workspaces/cron-ticker/cron/tick", {"enabled": False})
    runs = api.call("GET", "/v1/workspaces/cron-ticker/cron/tick/runs?limit=100")["items"]
    parse = lambda text: datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    late = [(parse(run["startedAt"]) - parse(run["scheduledAt"])) * 1000 for run in runs if run.get("startedAt")]
    took = [(parse(run["endedAt"]) - parse(run["startedAt"])) * 1000 for run in runs if run.get("endedAt")]
    for n in range(0, jobs, per_workspace):
        api.call("DELETE", f"/v1/workspaces/cron-{n // per_workspace}")
    api.call("DELETE", "/v1/workspaces/cron-ticker")
    return {"jobs": jobs, "idle_seconds": idle_seconds, "create_per_s": jobs / create_s, "baseline_cpu_s": baseline,
            "scheduled_cpu_s": scheduled, "late_ms": late, "run_ms": took,
            "statuses": sorted({run["status"] for run in runs})}


# ---------------------------------------------------------------------------------------------------------- metrics


def metrics_scrapes(binary, work, count, scrapes):
    """Issue 20: a Prometheus scrape must stay cheap however many workspaces are registered. A server of its own
    (`--disk-pool none`, as for `registered`: a pool would make a subvolume per PUT) registers `count` workspaces
    without booting them (PUT, 4 connections), then times `scrapes` scrapes of `GET /metrics` on one keep-alive
    connection after 3 unmeasured ones, and reads the sleeping count of the last."""
    own = os.path.join(work, "metrics")
    os.makedirs(own, exist_ok=True)
    server = Server(binary, own, ["--disk-pool", "none"])
    try:
        api = API(server.endpoint)
        made = register_many(server.endpoint, count)
        for _ in range(3):
            api.call("GET", "/metrics", expect_json=False)
        text = b""

        def scrape():
            nonlocal text
            text = api.call("GET", "/metrics", expect_json=False)

        times = [timed(scrape) for _ in range(scrapes)]
        sleeping = re.search(rb'^agentbox_workspaces\{state="sleeping"\} (\S+)$', text, re.M)
    finally:
        server.stop()
    return {"registered": made, "scrape_ms": times, "scrape_bytes": len(text),
            "sleeping": float(sleeping.group(1)) if sleeping else None}


# --------------------------------------------------------------------------------------------------------- toolkits


TOOL_CALLER = r"""
import json, subprocess, statistics, sys, time
calls = int(sys.argv[1])
def run(command):
    return subprocess.run(command, capture_output=True)
samples = []
for i in range(calls):
    start = time.perf_counter()
    result = run(["agentbox-bench", "echo", "--text", str(i)])
    samples.append((time.perf_counter() - start) * 1000)
    assert result.returncode == 0 and json.loads(result.stdout)["echo"]["text"] == str(i), result
floor = []
for i in range(calls):
    start = time.perf_counter()
    run(["true"])
    floor.append((time.perf_counter() - start) * 1000)
start = time.perf_counter()
group = [subprocess.Popen(["agentbox-bench", "echo", "--text", str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(calls)]
codes = [process.wait() for process in group]
concurrent_wall_ms = (time.perf_counter() - start) * 1000
# The same tool as an MCP tool: the stdio server an agent session is given, started and initialized, then called.
start = time.perf_counter()
mcp = subprocess.Popen(["/.agentbox/bin/tool", "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def rpc(message):
    mcp.stdin.write((json.dumps(message) + "\n").encode())
    mcp.stdin.flush()
    if "id" in message:
        return json.loads(mcp.stdout.readline())
rpc({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
rpc({"jsonrpc": "2.0", "method": "notifications/initialized"})
assert rpc({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})["result"]["tools"][0]["name"] == "bench_echo"
mcp_start_ms = (time.perf_counter() - start) * 1000
mcp_samples = []
for i in range(calls):
    start = time.perf_counter()
    answer = rpc({"jsonrpc": "2.0", "id": i + 2, "method": "tools/call", "params": {"name": "bench_echo", "arguments": {"text": str(i)}}})
    mcp_samples.append((time.perf_counter() - start) * 1000)
    assert answer["result"]["structuredContent"]["echo"]["text"] == str(i), answer
mcp.stdin.close()
mcp.wait()
print(json.dumps({"sequential_ms": samples, "spawn_true_ms": floor, "concurrent_wall_ms": concurrent_wall_ms,
                  "concurrent_ok": codes.count(0), "mcp_start_ms": mcp_start_ms, "mcp_call_ms": mcp_samples}))
"""


def toolkit_calls(api, calls):
    """Issue 21: a tool call from a command inside a workspace (egress denied) to an `http` handler on the host's
    loopback and back: `calls` sequential calls (p50, p99) beside spawning `true` in the same workspace, then `calls` at
    once."""
    import http.server, threading

    class Echo(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real webhook server would
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall between them

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            out = json.dumps({"echo": body["input"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *arguments):
            pass

    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        api.call("PUT", "/v1/toolkits/bench", {"description": "bench", "tools": [{
            "name": "echo", "description": "echo", "handler": {"type": "http", "url": f"http://127.0.0.1:{hook.server_address[1]}/"},
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}]})
        api.call("PUT", "/v1/workspaces/toolkit-bench", {"toolkits": ["bench"]})
        api.call("PUT", "/v1/workspaces/toolkit-bench/fs/file?path=/workspace/caller.py", raw=TOOL_CALLER.encode(), expect_json=False)
        result = api.call("POST", "/v1/workspaces/toolkit-bench/exec", {"command": f"python3 /workspace/caller.py {calls}", "timeoutMs": 600_000})
        assert result["exitCode"] == 0, result
        figures = json.loads(result["stdout"])
    finally:
        hook.shutdown()
        api.call("DELETE", "/v1/workspaces/toolkit-bench")
        api.call("DELETE", "/v1/toolkits/bench")
    figures["calls"] = calls
    return figures


# --------------------------------------------------------------------------------------------------------- gateway


def llm_gateway(binary, work, calls, streams):
    """Issue 22: what the LLM gateway adds to a model call. A scripted model server (`agentbox dev model-server`) is
    the upstream of a server of its own (`--llm-upstream anthropic=...`); from the host, `calls` non-streaming
    Messages calls on one keep-alive connection straight to the model server, then the same through the gateway with
    a workspace's gateway key (p50 difference: the gateway's cost); then `streams` streamed calls at once through the
    gateway, each checked whole (every event to message_stop, the same bytes as a direct stream)."""
    import threading
    own = os.path.join(work, "gateway")
    os.makedirs(own, exist_ok=True)
    script = os.path.join(own, "script.json")
    with open(script, "w") as out:
        json.dump({"turns": [], "finalText": "The gateway passes this answer through unchanged, chunk by chunk.", "sideText": "ok"}, out)
    model_out = open(os.path.join(own, "model.out"), "w")
    model = subprocess.Popen([binary, "dev", "model-server", "--script", script, "--port", "0"], stdout=model_out, stderr=subprocess.DEVNULL)
    server = None
    try:
        upstream = None
        for _ in range(200):
            with open(model_out.name) as out:
                found = re.search(r"http://[\d.]+:\d+", out.read())
            if found:
                upstream = found.group(0)
                break
            time.sleep(0.05)
        assert upstream, "the model server did not start"
        keys = os.path.join(own, "keys")
        with open(keys, "w") as out:
            out.write("anthropic=sk-bench-not-a-real-key\n")
        server = Server(binary, own, ["--disk-pool", "none", "--llm-upstream", f"anthropic={upstream}", "--llm-key-file", keys])
        api = API(server.endpoint)
        api.call("PUT", "/v1/workspaces/gateway-bench", {})
        key = api.call("POST", "/v1/workspaces/gateway-bench/exec", {"command": "printf %s \"$ANTHROPIC_API_KEY\""})["stdout"]
        assert key.startswith("abx-llm-"), key
        body = {"model": "bench-model", "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}],
                "tools": [{"name": "t", "input_schema": {"type": "object"}}]}
        direct, gateway = API(upstream), API(server.endpoint)
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        for _ in range(20):  # warm both paths
            direct.call("POST", "/v1/messages", body)
            gateway.call("POST", "/llm/anthropic/v1/messages", body, headers=headers)
        direct_ms = [timed(lambda: direct.call("POST", "/v1/messages", body)) for _ in range(calls)]
        gateway_ms = [timed(lambda: gateway.call("POST", "/llm/anthropic/v1/messages", body, headers=headers)) for _ in range(calls)]

        streamed = dict(body, stream=True)
        reference = API(upstream).call("POST", "/v1/messages", streamed, expect_json=False)
        results = [None] * streams

        def one(index):
            try:
                results[index] = API(server.endpoint).call("POST", "/llm/anthropic/v1/messages", streamed, headers=headers, expect_json=False)
            except Exception as error:  # counted as lost
                results[index] = repr(error).encode()

        start = time.perf_counter()
        threads = [threading.Thread(target=one, args=(index,)) for index in range(streams)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall_ms = (time.perf_counter() - start) * 1000
        # Ids differ per answer; everything else must be the same bytes, whole.
        normalize = lambda text: re.sub(rb'"msg_[^"]*"', b'"msg"', text)
        whole = sum(1 for result in results if result and normalize(result) == normalize(reference) and b"message_stop" in result)
        usage = api.call("GET", "/v1/workspaces/gateway-bench/usage")
    finally:
        if server:
            server.stop()
        model.kill()
        model.wait()
    return {"calls": calls, "direct_ms": direct_ms, "gateway_ms": gateway_ms, "streams": streams, "streams_whole": whole,
            "streams_wall_ms": wall_ms, "stream_bytes": len(reference), "counted_requests": usage["llm"]["requests"]}


# --------------------------------------------------------------------------------------------------------- sessions


def prompt(api, key, session, text):
    return api.call("POST", f"/v1/workspaces/{key}/sessions/{session}/prompt", {"content": [{"type": "text", "text": text}]})


def sessions(api, events, page_reads):
    """One turn of the mock agent streaming `events` chunks; then 100-event pages over HTTP at the start, middle and
    end of the transcript."""
    api.call("PUT", "/v1/workspaces/ingest", {})
    session = api.call("POST", "/v1/workspaces/ingest/sessions", {"agent": "mock"})["id"]
    before = api.call("GET", f"/v1/workspaces/ingest/sessions/{session}")["lastEventSeq"]
    start = time.perf_counter()
    result = prompt(api, "ingest", session, f"flood {events}")
    elapsed = time.perf_counter() - start
    assert result["stopReason"] == "end_turn", result
    last = api.call("GET", f"/v1/workspaces/ingest/sessions/{session}")["lastEventSeq"]
    pages = {}
    for name, after in [("first", 0), ("middle", last // 2), ("last", max(0, last - 100))]:
        samples = []
        for _ in range(page_reads):
            samples.append(timed(lambda: api.call(
                "GET", f"/v1/workspaces/ingest/sessions/{session}/events?after={after}&limit=100", expect_json=False)))
        page = api.call("GET", f"/v1/workspaces/ingest/sessions/{session}/events?after={after}&limit=100")
        assert page["items"][0]["seq"] == after + 1 and len(page["items"]) == min(100, last - after), page["items"][:1]
        pages[name] = samples
    api.call("POST", f"/v1/workspaces/ingest/sessions/{session}/close")
    return {"events": last - before, "transcript": last, "seconds": elapsed, "events_per_s": (last - before) / elapsed,
            "pages": pages}


async def subscriber(host, port, path, ready, record):
    """Reads one SSE stream until `turn_end`, counting `id:` lines and checking they are consecutive."""
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    ready()
    count, previous, ordered, tail, done = 0, None, True, b"", False
    while not done:
        chunk = await reader.read(1 << 16)
        if not chunk:
            break
        text = tail + chunk
        lines = text.split(b"\n")
        tail = lines.pop()
        for line in lines:
            if line.startswith(b"id: "):
                seq = int(line[4:].strip())
                ordered = ordered and (previous is None or seq == previous + 1)
                previous, count = seq, count + 1
            elif line.startswith(b"event: turn_end"):
                done = True
    record(count, previous, ordered, time.perf_counter())
    writer.close()


async def fan_out_run(endpoint, key, session, after, subscribers, events):
    url = urllib.parse.urlparse(endpoint)
    path = f"/v1/workspaces/{key}/sessions/{session}/events/stream?after={after}"
    connected = asyncio.Event()
    waiting = [subscribers]
    results = []

    def ready():
        waiting[0] -= 1
        if waiting[0] == 0:
            connected.set()

    tasks = []
    for _ in range(subscribers):
        tasks.append(asyncio.create_task(subscriber(url.hostname, url.port, path, ready,
                                                    lambda *r: results.append(r))))
        if len(tasks) % 100 == 0:
            await asyncio.sleep(0)  # let the connections made so far be accepted before more queue up
    await asyncio.wait_for(connected.wait(), 120)
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    answered = loop.run_in_executor(None, lambda: prompt(API(endpoint), key, session, f"flood {events}"))
    await asyncio.wait_for(asyncio.gather(*tasks), 600)
    result = await answered
    return start, result, results


def fan_out(api, subscribers, events):
    """`subscribers` SSE clients of one session, connected before a turn of `events` chunks; every one must receive
    every event of the turn, in order."""
    api.call("PUT", "/v1/workspaces/fanout", {})
    session = api.call("POST", "/v1/workspaces/fanout/sessions", {"agent": "mock"})["id"]
    after = api.call("GET", f"/v1/workspaces/fanout/sessions/{session}")["lastEventSeq"]
    start, result, results = asyncio.run(fan_out_run(api.endpoint, "fanout", session, after, subscribers, events))
    assert result["stopReason"] == "end_turn", result
    last = api.call("GET", f"/v1/workspaces/fanout/sessions/{session}")["lastEventSeq"]
    expected = last - after
    complete = sum(1 for count, final, ordered, _ in results if count == expected and final == last and ordered)
    finished = [(at - start) * 1000 for *_, at in results]
    api.call("POST", f"/v1/workspaces/fanout/sessions/{session}/close")
    return {"subscribers": subscribers, "events": expected, "complete": complete,
            "deliveries_per_s": subscribers * expected / (max(finished) / 1000),
            "finished_ms": summary(finished)}


# --------------------------------------------------------------------------------------------------------- previews


def wrk(command):
    text = command if isinstance(command, str) else subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    m = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", text)
    p50 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", text)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    return {"rps": rps, "p50": p50, "p99": p99, "requests": requests}


def cpu_seconds(pids):
    """User + system CPU time of `pids` (each with all its threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def reaped_cpu_seconds(pids):
    """The CPU time of the children `pids` have waited for (a sandbox's supervisor reaps every command it ran)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[13]) + int(fields[14])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds():
    """CPU time the whole machine spent busy (all cores; /proc/stat without idle and iowait)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def with_cpu(run, parties):
    """Runs `run` (a wrk on the host, whose result it returns) and adds the CPU time each party spent per request,
    in µs: `parties` maps a name to its pids; "wrk" is the wrk child itself."""
    before = {name: cpu_seconds(pids) for name, pids in parties.items()}
    wrk_before = children_cpu_seconds()
    result = run()
    spent = {name: cpu_seconds(pids) - before[name] for name, pids in parties.items()}
    spent["wrk"] = children_cpu_seconds() - wrk_before
    result["cpu_us"] = {name: seconds * 1e6 / result["requests"] for name, seconds in spent.items()}
    return result


def pin(pids, cpus):
    """Sets the CPUs every thread of `pids` may run on (new threads inherit it)."""
    for pid in pids:
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                os.sched_setaffinity(int(tid), cpus)
        except OSError:
            pass


def budget(direct_rps, proxied, proxy):
    """What the CPU per request says: the throughput all cores at work would give, and the most the proxy may
    spend per request for 0.8× direct (wrk and the server inside cost what they cost)."""
    cores = os.cpu_count()
    cpu = proxied["cpu_us"]
    return {"cores": cores, "ceiling_rps": cores * 1e6 / sum(cpu.values()),
            "proxy_allowance_us": cores * 1e6 / (0.8 * direct_rps) - sum(v for k, v in cpu.items() if k != proxy)}


def wait_for_answer(api, key, port, status):
    """Until a server started in workspace `key` answers `GET /` on `port` with `status` (10 s at most)."""
    for _ in range(200):
        try:
            if api.call("POST", f"/v1/workspaces/{key}/fetch", {"port": port, "path": "/"})["status"] == status:
                return
        except RuntimeError:
            pass
        time.sleep(0.05)


def previews(api, server_pid, work, seconds, connections):
    """A node http server inside a workspace (two cores' quota, so that wrk inside does not starve it): wrk on the
    workspace's loopback, then wrk on the host through the preview URL."""
    api.call("PUT", "/v1/workspaces/preview", {"limits": {"cpuPercent": 200}})
    script = ('require("http").createServer((q, s) => { s.writeHead(200, {"content-type": "text/plain"}); '
              's.end("hello\\n"); }).listen(8080, "127.0.0.1");\n')
    api.call("PUT", "/v1/workspaces/preview/fs/file?path=/workspace/hello.js", raw=script.encode())
    api.call("POST", "/v1/workspaces/preview/processes", {"command": "node", "args": ["/workspace/hello.js"]})
    wait_for_answer(api, "preview", 8080, 200)
    url = api.call("POST", "/v1/workspaces/preview/previews", {"port": 8080})["url"]
    command = f"wrk -t1 -c{connections} -d{seconds}s --latency"
    inside = api.call("POST", "/v1/workspaces/preview/exec",
                      {"command": f"{command} http://127.0.0.1:8080/", "timeoutMs": (seconds + 60) * 1000})
    direct = wrk(inside["stdout"])
    node = [pid for pid in descendants(server_pid) if command_line(pid) == ["node", "/workspace/hello.js"]]
    proxied = with_cpu(lambda: wrk(command.split() + [url]), {"node": node, "proxy": [server_pid]})
    # The latency a preview adds, unloaded: one connection, one request at a time.
    quiet = f"wrk -t1 -c1 -d{max(1, seconds // 3)}s --latency"
    direct_one = wrk(api.call("POST", "/v1/workspaces/preview/exec",
                              {"command": f"{quiet} http://127.0.0.1:8080/", "timeoutMs": (seconds + 60) * 1000})["stdout"])
    proxied_one = wrk(quiet.split() + [url])
    own_core = None
    if (os.cpu_count() or 1) >= 2:
        # The proxy on a core of its own: wrk and node share CPU 0, the server has CPU 1 (direct and proxied alike),
        # which is what a server with cores to spare gives it; on shared cores the figure above measures contention.
        everything = set(range(os.cpu_count()))
        pin(node, {0})
        pin([server_pid], {1})
        try:
            pinned = f"taskset -c 0 {command}"
            own_direct = wrk(api.call("POST", "/v1/workspaces/preview/exec",
                                      {"command": f"{pinned} http://127.0.0.1:8080/", "timeoutMs": (seconds + 60) * 1000})["stdout"])
            own_proxied = wrk(pinned.split() + [url])
            own_core = {"direct": own_direct, "proxied": own_proxied, "ratio": own_proxied["rps"] / own_direct["rps"]}
        finally:
            pin([server_pid], everything)
    websocket = preview_websockets(api, server_pid, seconds)
    api.call("DELETE", "/v1/workspaces/preview")
    result = {"seconds": seconds, "connections": connections, "direct": direct, "proxied": proxied,
              "ratio": proxied["rps"] / direct["rps"], "added_p50_ms": proxied["p50"] - direct["p50"],
              "unloaded_direct_p50_ms": direct_one["p50"], "unloaded_added_p50_ms": proxied_one["p50"] - direct_one["p50"],
              "budget": budget(direct["rps"], proxied, "proxy"), "own_core": own_core}
    result["websocket"] = websocket
    result["nginx"] = nginx_reference(work, script, command, quiet)
    return result


# A WebSocket echo server and a load client for the WebSocket previews, in Node with no packages (the frames by hand).
WS_ECHO_SERVER = r"""
const http = require("http"), crypto = require("crypto");
function frame(op, payload) {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | op, n]) : n < 65536 ? Buffer.from([0x80 | op, 126, n >> 8, n & 255])
    : (() => { const h = Buffer.alloc(10); h[0] = 0x80 | op; h[1] = 127; h.writeBigUInt64BE(BigInt(n), 2); return h; })();
  return Buffer.concat([head, payload]);
}
const server = http.createServer((q, s) => { s.writeHead(426); s.end(); });
server.on("upgrade", (req, sock, first) => {
  const accept = crypto.createHash("sha1").update(req.headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
  sock.setNoDelay(true);
  sock.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n");
  let buf = first;
  const read = (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    const out = [];
    while (buf.length >= 2) {
      const op = buf[0] & 15, masked = buf[1] & 128;
      let len = buf[1] & 127, off = 2;
      if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) break; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      const maskAt = off;
      if (masked) off += 4;
      if (buf.length < off + len) break;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskAt + (i & 3)];
      buf = buf.subarray(off + len);
      if (op === 8) { sock.end(frame(8, payload)); return; }
      if (op === 9) out.push(frame(10, payload));
      else if (op === 1 || op === 2) out.push(frame(op, payload));
    }
    if (out.length) sock.write(out.length === 1 ? out[0] : Buffer.concat(out));
  };
  if (first.length) { buf = Buffer.alloc(0); read(first); }
  sock.on("data", read);
  sock.on("error", () => {});
});
server.listen(Number(process.argv[2] || 8081), "127.0.0.1");
"""

# Usage: node ws-client.js ws://host:port/path connections window seconds size. Each connection keeps `window` text
# messages of `size` bytes in flight and sends one more per echo; prints {"messages", "seconds", "rate"} as JSON.
WS_LOAD_CLIENT = r"""
const net = require("net");
const [url, connections, windowSize, seconds, size] = [process.argv[2], ...process.argv.slice(3).map(Number)];
const u = new URL(url);
const payload = Buffer.alloc(size, "x");
const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
const masked = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]));
const message = Buffer.concat([Buffer.from(size < 126 ? [0x81, 0x80 | size] : [0x81, 0x80 | 126, size >> 8, size & 255]), mask, masked]);
let count = 0, counting = false, open = 0;
function connect() {
  const sock = net.connect(Number(u.port), u.hostname, () => {
    sock.setNoDelay(true);
    sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
  let buf = Buffer.alloc(0), upgraded = false;
  sock.on("data", (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    if (!upgraded) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      if (!buf.subarray(0, 13).toString().includes(" 101")) { console.error(buf.toString()); process.exit(1); }
      upgraded = true;
      buf = buf.subarray(end + 4);
      open++;
      sock.write(Buffer.concat(Array(windowSize).fill(message)));
    }
    let echoes = 0;
    while (buf.length >= 2) {
      let len = buf[1] & 127, off = 2;
      if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); off = 4; }
      if (buf.length < off + len) break;
      buf = buf.subarray(off + len);
      echoes++;
    }
    if (counting) count += echoes;
    if (echoes) sock.write(echoes === 1 ? message : Buffer.concat(Array(echoes).fill(message)));
  });
  sock.on("error", (e) => { console.error(String(e)); process.exit(1); });
}
for (let i = 0; i < connections; i++) connect();
const started = setInterval(() => {
  if (open < connections) return;
  clearInterval(started);
  setTimeout(() => {
    counting = true;
    const t0 = process.hrtime.bigint();
    setTimeout(() => {
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
      console.log(JSON.stringify({ messages: count, seconds: elapsed, rate: count / elapsed }));
      process.exit(0);
    }, seconds * 1000);
  }, 500);
}, 10);
"""


def preview_websockets(api, server_pid, seconds, connections=4, window=16, size=32):
    """WebSocket previews: an echo server inside the workspace (on 8081), and a client keeping `window` messages in
    flight on each of `connections` WebSockets: inside the workspace on its loopback (direct), then on the host through
    the preview URL. The server's CPU per proxied message (µs) beside the rate."""
    api.call("PUT", "/v1/workspaces/preview/fs/file?path=/workspace/ws-echo.js", raw=WS_ECHO_SERVER.encode())
    api.call("PUT", "/v1/workspaces/preview/fs/file?path=/workspace/ws-client.js", raw=WS_LOAD_CLIENT.encode())
    api.call("POST", "/v1/workspaces/preview/processes", {"command": "node", "args": ["/workspace/ws-echo.js", "8081"]})
    wait_for_answer(api, "preview", 8081, 426)  # a WebSocket server answers a plain GET with 426
    preview = api.call("POST", "/v1/workspaces/preview/previews", {"port": 8081})["url"]
    arguments = [str(connections), str(window), str(seconds), str(size)]
    inside = api.call("POST", "/v1/workspaces/preview/exec",
                      {"command": " ".join(["node", "/workspace/ws-client.js", "ws://127.0.0.1:8081/echo"] + arguments),
                       "timeoutMs": (seconds + 60) * 1000})
    direct = json.loads(inside["stdout"].strip().splitlines()[-1])
    client = os.path.join(tempfile.mkdtemp(), "ws-client.js")
    with open(client, "w") as f:
        f.write(WS_LOAD_CLIENT)
    echo = [pid for pid in descendants(server_pid) if command_line(pid)[:2] == ["node", "/workspace/ws-echo.js"]]
    before = {"proxy": cpu_seconds([server_pid]), "echo": cpu_seconds(echo)}
    out = subprocess.run(["node", client, preview.replace("http://", "ws://", 1) + "echo"] + arguments,
                         check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    proxied = json.loads(out.strip().splitlines()[-1])
    spent = {name: cpu_seconds([server_pid] if name == "proxy" else echo) - value for name, value in before.items()}
    # The proxy relays each message twice (there and back); its CPU is counted per echoed message.
    proxied["cpu_us"] = {name: value * 1e6 / max(1, proxied["messages"]) for name, value in spent.items()}
    return {"connections": connections, "window": window, "size": size, "seconds": seconds,
            "direct": direct, "proxied": proxied, "ratio": proxied["rate"] / direct["rate"],
            "nginx": nginx_websocket_reference(seconds, arguments, client)}


def nginx_websocket_reference(seconds, arguments, client):
    """The same echo server and client on the host, directly and through nginx relaying the upgraded connection (the
    reference for the WebSocket preview ratio: what a proxy written in C gets with the same extra hop on the same
    cores), with nginx's CPU per echoed message. Skipped without nginx or node."""
    if not shutil.which("nginx") or not shutil.which("node"):
        return None
    directory = tempfile.mkdtemp(prefix="agentbox-nginx-ws.")
    echo_script = os.path.join(directory, "ws-echo.js")
    with open(echo_script, "w") as f:
        f.write(WS_ECHO_SERVER)
    port, proxy_port = free_port(), free_port()
    with open(os.path.join(directory, "nginx.conf"), "w") as f:
        f.write(f"""worker_processes auto; pid {directory}/nginx.pid; error_log {directory}/error.log; daemon off;
events {{ worker_connections 1024; }}
http {{ access_log off;
  server {{ listen 127.0.0.1:{proxy_port}; location / {{ proxy_pass http://127.0.0.1:{port}; proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; proxy_read_timeout 300s; }} }} }}
""")
    echo = subprocess.Popen(["node", echo_script, str(port)])
    nginx = subprocess.Popen(["nginx", "-c", os.path.join(directory, "nginx.conf"), "-e", os.path.join(directory, "error.log")])
    try:
        # Both must answer: the echo server a plain GET with 426, nginx passing that on.
        wait_until_answering([port, proxy_port], 426)

        def run(target):
            out = subprocess.run(["node", client, f"ws://127.0.0.1:{target}/echo"] + arguments,
                                 check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
            return json.loads(out.strip().splitlines()[-1])

        direct = run(port)
        workers = descendants(nginx.pid) + [nginx.pid]
        before = cpu_seconds(workers)
        proxied = run(proxy_port)
        proxied["cpu_us"] = {"proxy": (cpu_seconds(workers) - before) * 1e6 / max(1, proxied["messages"])}
    finally:
        nginx.terminate()
        echo.terminate()
        nginx.wait()
        echo.wait()
        shutil.rmtree(directory, ignore_errors=True)
    return {"direct": direct, "proxied": proxied, "ratio": proxied["rate"] / direct["rate"]}


def wait_until_answering(ports, status, attempts=400):
    """Until a plain GET on each of `ports` (loopback) is answered `status`, trying every 50 ms, `attempts` times."""
    for _ in range(attempts):
        try:
            statuses = []
            for port in ports:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/")
                statuses.append(connection.getresponse().status)
                connection.close()
            if all(answered == status for answered in statuses):
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.05)


def nginx_reference(work, script, command, quiet):
    """The same node server on the host, hit directly and through nginx (keep-alive upstream): what a proxy written
    in C gets on the same cores, the reference for the preview ratio. Skipped without nginx."""
    if not shutil.which("nginx") or not shutil.which("node"):
        return None
    directory = os.path.join(work, "nginx")
    os.makedirs(directory, exist_ok=True)
    port, proxy_port = free_port(), free_port()
    with open(os.path.join(directory, "hello.js"), "w") as f:
        f.write(script.replace("8080", str(port)))
    with open(os.path.join(directory, "nginx.conf"), "w") as f:
        f.write(f"""worker_processes auto; pid {directory}/nginx.pid; error_log {directory}/error.log; daemon off;
events {{ worker_connections 1024; }}
http {{ access_log off; upstream app {{ server 127.0.0.1:{port}; keepalive 64; }}
  server {{ listen 127.0.0.1:{proxy_port}; location / {{ proxy_pass http://app; proxy_http_version 1.1;
    proxy_set_header Connection ""; }} }} }}
""")
    node = subprocess.Popen(["node", os.path.join(directory, "hello.js")])
    nginx = subprocess.Popen(["nginx", "-c", os.path.join(directory, "nginx.conf"), "-e", os.path.join(directory, "error.log")])
    try:
        # Both node and nginx must answer (a loaded machine starts node slowly: wrk on a refused port fails).
        wait_until_answering([port, proxy_port], 200)
        time.sleep(0.2)
        direct = wrk(command.split() + [f"http://127.0.0.1:{port}/"])
        proxied = with_cpu(lambda: wrk(command.split() + [f"http://127.0.0.1:{proxy_port}/"]),
                           {"node": [node.pid], "proxy": descendants(nginx.pid)})
        direct_one = wrk(quiet.split() + [f"http://127.0.0.1:{port}/"])
        proxied_one = wrk(quiet.split() + [f"http://127.0.0.1:{proxy_port}/"])
        own_core = None
        if (os.cpu_count() or 1) >= 2:
            pin([node.pid], {0})
            pin(descendants(nginx.pid), {1})
            pinned = f"taskset -c 0 {command}".split()
            own_direct = wrk(pinned + [f"http://127.0.0.1:{port}/"])
            own_proxied = wrk(pinned + [f"http://127.0.0.1:{proxy_port}/"])
            own_core = {"direct": own_direct, "proxied": own_proxied, "ratio": own_proxied["rps"] / own_direct["rps"]}
    finally:
        nginx.terminate()
        node.terminate()
        nginx.wait()
        node.wait()
    return {"direct": direct, "proxied": proxied, "ratio": proxied["rps"] / direct["rps"],
            "unloaded_added_p50_ms": proxied_one["p50"] - direct_one["p50"], "budget": budget(direct["rps"], proxied, "proxy"),
            "own_core": own_core}


def command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
    except OSError:
        return []


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------------------------ files


def curl_seconds(arguments):
    out = subprocess.run(["curl", "-sf", "-o", "/dev/null", "-w", "%{time_total}"] + arguments,
                         check=True, capture_output=True, text=True).stdout
    return float(out)


def files(api, work, megabytes, small_files, iterations):
    base = f"{api.endpoint}/v1/workspaces/files"
    api.call("PUT", "/v1/workspaces/files", {})
    payload = os.path.join(work, "payload")
    with open(payload, "wb") as f:
        for _ in range(megabytes):
            f.write(os.urandom(1 << 20))
    os.sync()
    copy, up, down = [], [], []
    for i in range(iterations):
        target = os.path.join(work, f"copy.{i}")
        start = time.perf_counter()
        subprocess.run(["cp", payload, target], check=True)
        subprocess.run(["sync", target], check=True)
        copy.append(time.perf_counter() - start)
        os.remove(target)
        # Like cp, each upload makes a new file (replacing one would add freeing the old one's blocks to the time),
        # and like its copy, it is removed outside the timing.
        up.append(curl_seconds(["-X", "PUT", "--data-binary", f"@{payload}", "-H", "content-type: application/octet-stream",
                                f"{base}/fs/file?path=/workspace/payload{i}"]))
        downloaded = os.path.join(work, "down")
        down.append(float(subprocess.run(["curl", "-sf", "-o", downloaded, "-w", "%{time_total}",
                                          f"{base}/fs/file?path=/workspace/payload{i}"],
                                         check=True, capture_output=True, text=True).stdout))
        assert subprocess.run(["cmp", "-s", payload, downloaded]).returncode == 0, "downloaded bytes differ"
        os.remove(downloaded)
        if i < iterations - 1:
            api.call("DELETE", f"/v1/workspaces/files/fs/entry?path=/workspace/payload{i}")
    small = os.path.join(work, "small")
    for i in range(small_files):
        directory = os.path.join(small, "d%02d" % (i % 100))
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "f%05d.txt" % i), "wb") as f:
            f.write(os.urandom(512).hex().encode())
    archive = os.path.join(work, "small.tar")
    subprocess.run(["tar", "-C", small, "-cf", archive, "."], check=True)
    tars, untars = [], []
    for i in range(iterations):
        tars.append(curl_seconds(["-X", "POST", "--data-binary", f"@{archive}", "-H", "content-type: application/x-tar",
                                  f"{base}/fs/upload?path=/workspace/small{i}"]))
        if i > 0:  # the snapshots below are of one 100 MB file and one copy of the small files
            api.call("DELETE", f"/v1/workspaces/files/fs/entry?path=/workspace/small{i}&recursive=true")
        target = os.path.join(work, f"untar{i}")
        os.makedirs(target)
        os.sync()
        start = time.perf_counter()
        subprocess.run(["tar", "-C", target, "-xf", archive], check=True)
        os.sync()
        untars.append(time.perf_counter() - start)
        shutil.rmtree(target)
    snaps, forks = [], []
    for i in range(iterations):
        os.sync()
        start = time.perf_counter()
        snapshot = api.call("POST", "/v1/workspaces/files/snapshots")
        middle = time.perf_counter()
        api.call("PUT", f"/v1/workspaces/files-fork{i}", {"fromSnapshot": snapshot["id"]})
        end = time.perf_counter()
        snaps.append(middle - start)
        forks.append(end - middle)
        api.call("DELETE", f"/v1/workspaces/files-fork{i}")
        api.call("DELETE", f"/v1/workspaces/files/snapshots/{snapshot['id']}")
    api.call("DELETE", "/v1/workspaces/files")
    cp_s, up_s, down_s = statistics.median(copy), statistics.median(up), statistics.median(down)
    tar_s, untar_s = statistics.median(tars), statistics.median(untars)
    return {"megabytes": megabytes, "iterations": iterations, "small_files": small_files,
            "filesystem": subprocess.run(["df", "-T", work], capture_output=True, text=True).stdout.split("\n")[1].split()[1],
            "cp_mb_s": megabytes / cp_s, "upload_mb_s": megabytes / up_s, "download_mb_s": megabytes / down_s,
            "upload_ratio": cp_s / up_s, "download_ratio": cp_s / down_s,
            "tar_files_s": small_files / tar_s, "untar_files_s": small_files / untar_s,
            "snapshot_ms": statistics.median(snaps) * 1000, "fork_ms": statistics.median(forks) * 1000,
            "snapshot_contents": f"one {megabytes} MB file and {small_files} small files"}


# ------------------------------------------------------------------------------------------------------- neighbours


class KeepAlive:
    """One keep-alive HTTP/1.1 connection on asyncio streams, for many requests in flight on one event loop (what
    `API` does with a blocking socket)."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def call(self, method, path, body):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        data = json.dumps(body).encode()
        self.writer.write(f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\ncontent-type: application/json\r\n"
                          f"content-length: {len(data)}\r\n\r\n".encode() + data)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ")[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
        if "content-length" in headers:
            text = await self.reader.readexactly(int(headers["content-length"]))
        else:  # chunked (no trailers)
            text = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                text += chunk[:size]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, text

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def exec_loops(endpoint, keys, seconds, connections):
    """Every workspace of `keys` runs `echo` execs back to back for `seconds`, sharing `connections` keep-alive
    connections (so at most that many requests are in flight). Returns each request's latency (ms) and the errors."""
    url = urllib.parse.urlparse(endpoint)
    pool = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(KeepAlive(url.hostname, url.port))
    latencies, errors = [], []
    deadline = time.perf_counter() + seconds

    async def loop(key):
        while time.perf_counter() < deadline:
            connection = await pool.get()
            start = time.perf_counter()
            try:
                status, text = await connection.call("POST", f"/v1/workspaces/{key}/exec", {"command": f"echo {key}"})
                if status != 200 or json.loads(text)["stdout"] != f"{key}\n":
                    errors.append(f"{key}: {status} {text[:200]!r}")
                else:
                    latencies.append((time.perf_counter() - start) * 1000)
            except (OSError, asyncio.IncompleteReadError, ValueError, KeyError) as error:
                errors.append(f"{key}: {error!r}")
                connection.close()
            finally:
                pool.put_nowait(connection)

    await asyncio.gather(*(loop(key) for key in keys))
    while not pool.empty():
        pool.get_nowait().close()
    return latencies, errors


def exec_load(endpoint, keys, seconds, connections, pipe):
    """The body of the load's own process: reports when it starts, then its latencies and errors."""
    pipe.send("started")
    start = time.perf_counter()
    latencies, errors = asyncio.run(exec_loops(endpoint, keys, seconds, connections))
    pipe.send({"latencies": latencies, "errors": errors, "seconds": time.perf_counter() - start})
    pipe.close()


def probe(api, key, seconds, until=None):
    """The latency of one `echo` exec in workspace `key` every 100 ms, for `seconds` or until `until()` says so. A
    probe slower than 100 ms delays the next one (no catching up, which would measure the probe's own queue)."""
    samples, errors = [], []
    start = time.perf_counter()
    tick = start
    while time.perf_counter() - start < seconds and not (until and until()):
        began = time.perf_counter()
        try:
            answer = api.call("POST", f"/v1/workspaces/{key}/exec", {"command": "echo probe"})
            if answer["stdout"] == "probe\n":
                samples.append((time.perf_counter() - began) * 1000)
            else:
                errors.append(repr(answer)[:200])
        except (OSError, RuntimeError, http.client.HTTPException) as error:
            errors.append(repr(error))
            api.connection.close()
        tick = max(tick + 0.1, time.perf_counter())
        time.sleep(max(0, tick - time.perf_counter()))
    return samples, errors


def neighbours(api, server_pid, workspaces, seconds, connections):
    """Noisy neighbours: `workspaces` workspaces each run an `echo` exec loop over HTTP (at most `connections` in
    flight, on keep-alive connections) for `seconds`; every request must succeed. Meanwhile an idle workspace of
    another tenant runs one `echo` every 100 ms on a connection of its own: its latency, against the same probe
    without the load, is what the neighbours cost it. The load runs in a process of its own, so that the probe's
    timing is not that of the load's Python event loop; the CPU the server and the load spend is measured, since
    they share the machine's cores."""
    keys = [f"noisy-{i}" for i in range(workspaces)]
    for key in keys + ["quiet"]:
        api.call("PUT", f"/v1/workspaces/{key}", {})
        api.call("POST", f"/v1/workspaces/{key}/exec", {"command": "true"})  # booted before the clock starts
    quiet = API(api.endpoint)
    baseline, baseline_errors = probe(quiet, "quiet", min(10, seconds))
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe()
    load = context.Process(target=exec_load, args=(api.endpoint, keys, seconds, connections, theirs))
    sandboxes = descendants(server_pid)[1:]
    cpu = lambda: {"server": cpu_seconds([server_pid]), "sandboxes": cpu_seconds(sandboxes) + reaped_cpu_seconds(sandboxes),
                   "probe": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), "machine": machine_busy_seconds()}
    before, load_before, load_average = cpu(), children_cpu_seconds(), os.getloadavg()[0]
    load.start()
    assert ours.poll(60) and ours.recv() == "started", "the load did not start"
    loaded, loaded_errors = probe(quiet, "quiet", seconds + 60, until=ours.poll)
    assert ours.poll(120), "the load did not finish"
    result = ours.recv()
    spent = {name: value - before[name] for name, value in cpu().items()}
    load.join(30)
    if load.is_alive():
        load.kill()
        load.join()
    spent["load"] = children_cpu_seconds() - load_before
    spent["others"] = spent["machine"] - sum(spent[name] for name in ("server", "sandboxes", "probe", "load"))
    for key in keys + ["quiet"]:
        api.call("DELETE", f"/v1/workspaces/{key}")
    errors = result["errors"] + baseline_errors + loaded_errors
    return {"workspaces": workspaces, "seconds": result["seconds"], "connections": connections,
            "requests": len(result["latencies"]) + len(result["errors"]), "errors": len(errors),
            "error_samples": errors[:10], "requests_per_s": len(result["latencies"]) / result["seconds"],
            "cores": {name: value / result["seconds"] for name, value in spent.items()},
            "load_average_before": load_average, "server_cpu_us_per_exec": spent["server"] * 1e6 / len(result["latencies"] or [0]),
            "latency_ms": summary(result["latencies"]) if result["latencies"] else None,
            "probe_idle_ms": summary(baseline), "probe_loaded_ms": summary(loaded) if loaded else None,
            "probe_samples": {"idle": baseline, "loaded": loaded}}


# ------------------------------------------------------------------------------------------------ scale (issue 28)


def awake_range(endpoint, start, stop, pipe):
    """The body of one process of `awake_many`: creates workspaces awake-{start}..awake-{stop-1}, each with one shell
    (the workspace's login shell on a PTY, no client attached), on one keep-alive connection; sends the errors."""
    api, errors = API(endpoint), []
    for i in range(start, stop):
        try:
            api.call("PUT", f"/v1/workspaces/awake-{i}", {})
            api.call("POST", f"/v1/workspaces/awake-{i}/shells", {})
        except (OSError, RuntimeError, http.client.HTTPException) as error:
            errors.append(f"awake-{i}: {error}"[:300])
            api = API(endpoint)
    pipe.send(errors)
    pipe.close()


def delete_range(endpoint, keys, pipe):
    api = API(endpoint)
    for key in keys:
        try:
            api.call("DELETE", f"/v1/workspaces/{key}")
        except (OSError, RuntimeError, http.client.HTTPException):
            api = API(endpoint)
    pipe.send(len(keys))
    pipe.close()


def in_processes(target, argument_lists):
    """Runs `target(*arguments, pipe)` in a process per argument list; returns what each sent."""
    context = multiprocessing.get_context("fork")
    pipes, processes = [], []
    for arguments in argument_lists:
        ours, theirs = context.Pipe()
        process = context.Process(target=target, args=(*arguments, theirs))
        process.start()
        pipes.append(ours)
        processes.append(process)
    results = [pipe.recv() for pipe in pipes]
    for process in processes:
        process.join()
    return results


def read_meminfo():
    """/proc/meminfo's fields, in KiB."""
    with open("/proc/meminfo") as f:
        return {line.split(":")[0]: int(line.split()[1]) for line in f}


def awake_many(api, server_pid, count, parallel, sample):
    """Issue 28: `count` workspaces awake at once, each idle with one shell. Creates them from `parallel` processes,
    then reads the memory of the server and of every sandbox process (RSS and PSS), checks from the list that every
    one of them is running, and times an exec (and a shell listing) in `sample` random ones while all are awake."""
    import random
    time.sleep(0.5)
    base_server_rss, _ = resident([server_pid])
    base_rss, base_pss = resident(descendants(server_pid))
    base_meminfo = read_meminfo()
    start = time.perf_counter()
    bounds = [count * k // parallel for k in range(parallel + 1)]
    errors = sum(in_processes(awake_range, [(api.endpoint, bounds[k], bounds[k + 1]) for k in range(parallel)]), [])
    made_s = time.perf_counter() - start
    time.sleep(2)
    pids = descendants(server_pid)
    server_rss, _ = resident([server_pid])
    total_rss, total_pss = resident(pids)
    awake, cursor = [], None
    while True:
        page = api.call("GET", "/v1/workspaces?limit=1000" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else ""))
        awake += [int(item["key"][6:]) for item in page["items"] if item["key"].startswith("awake-") and item["state"] == "running"]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    running = len(awake)
    # Past the server's budget of awake workspaces (serve --max-awake), the rest were refused with 503: the sample is
    # taken from those awake (a wake of another would be refused too, each awake one being held by its shell).
    refused = sum(1 for error in errors if ": 503 " in error)
    chooser = random.Random(28)
    execs, shells_running = [], 0
    for i in chooser.sample(sorted(awake), min(sample, len(awake))):
        start_exec = time.perf_counter()
        answer = api.call("POST", f"/v1/workspaces/awake-{i}/exec", {"command": "echo $((6*7))"})
        execs.append((time.perf_counter() - start_exec) * 1000)
        assert answer["stdout"] == "42\n", answer
        shells = api.call("GET", f"/v1/workspaces/awake-{i}/shells")["items"]
        shells_running += 1 if any(shell["status"] == "running" for shell in shells) else 0
    meminfo = read_meminfo()
    # Where the machine's memory went, per awake workspace (KiB): the kernel's part (slab, the processes' kernel
    # stacks and page tables, per-CPU data) is not in any process's PSS.
    kernel = {field: (meminfo.get(field, 0) - base_meminfo.get(field, 0)) / max(1, running)
              for field in ("MemAvailable", "Slab", "SUnreclaim", "KernelStack", "PageTables", "Percpu", "Shmem")}
    keys = [f"awake-{i}" for i in range(count)]
    start = time.perf_counter()
    in_processes(delete_range, [(api.endpoint, keys[k::parallel]) for k in range(parallel)])
    deleted_s = time.perf_counter() - start
    return {
        "count": count, "errors": len(errors) - refused, "refused": refused,
        "error_samples": [error for error in errors if ": 503 " not in error][:10] or errors[:2], "made_s": made_s,
        "made_per_s": count / made_s, "running": running, "processes": len(pids) - 1,
        "server_rss_mb": server_rss / 1024, "server_rss_per_workspace_kb": (server_rss - base_server_rss) / count,
        "total_rss_mb": total_rss / 1024, "total_pss_mb": total_pss / 1024,
        "pss_per_workspace_kb": (total_pss - base_pss) / count, "rss_per_workspace_kb": (total_rss - base_rss) / count,
        "machine_available_mb": meminfo.get("MemAvailable", 0) / 1024,
        "machine_per_workspace_kb": {field: round(value, 1) for field, value in kernel.items()}, "sample": len(execs),
        "sample_shells_running": shells_running, "exec_ms": summary(execs), "deleted_s": deleted_s,
    }


def spawn_floor_binary(work):
    """bench/spawn_floor.c, built with the machine's cc into `work`."""
    binary = os.path.join(work, "spawn_floor")
    if not os.path.exists(binary):
        source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spawn_floor.c")
        subprocess.run(["cc", "-O2", "-pthread", "-o", binary, source], check=True)
    return binary


def exec_throughput(api, work, workspaces, seconds):
    """Issue 28: `workspaces` workspaces each run `true` execs back to back, all at once (a keep-alive connection
    each, so `workspaces` requests in flight), for `seconds`: total execs/s and the latency distribution. The floor,
    measured in the same run: as many threads each spawning `true` (posix_spawn + waitpid) back to back, and as many
    spawning a bare bwrap around `true`."""
    keys = [f"tput-{i}" for i in range(workspaces)]
    for key in keys:
        api.call("PUT", f"/v1/workspaces/{key}", {})
        api.call("POST", f"/v1/workspaces/{key}/exec", {"command": "true"})  # booted before the clock starts
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe()
    load = context.Process(target=exec_load, args=(api.endpoint, keys, seconds, workspaces, theirs))
    load.start()
    assert ours.poll(60) and ours.recv() == "started", "the load did not start"
    assert ours.poll(seconds + 300), "the load did not finish"
    result = ours.recv()
    load.join()
    for key in keys:
        api.call("DELETE", f"/v1/workspaces/{key}")
    floor = spawn_floor_binary(work)
    def spawns(*program):
        out = subprocess.run([floor, str(workspaces), str(seconds), *program], check=True, capture_output=True, text=True).stdout
        data = json.loads(out)
        return {"per_s": len(data["latencies"]) / data["seconds"], "failures": data["failures"], "ms": summary(data["latencies"])}
    bwrap = shutil.which("bwrap")
    return {
        "workspaces": workspaces, "seconds": result["seconds"], "errors": len(result["errors"]),
        "error_samples": result["errors"][:10], "execs": len(result["latencies"]),
        "per_s": len(result["latencies"]) / result["seconds"],
        "ms": summary(result["latencies"]) if result["latencies"] else None,
        "spawn": spawns("/usr/bin/true"),
        "bwrap": spawns(bwrap, "--unshare-all", "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
                        "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin", "--", "/usr/bin/true"),
    }


# ----------------------------------------------------------------------------------------------------------- report

ANCHORS = {
    "create": "agentOS 37 ms (create + echo); E2B create → exec 440 ms",
    "wake": "agentOS 4.8 ms (its sleep workload)",
    "memory": "agentOS 22 MB per shell VM",
}


def verdict(ok):
    return "met" if ok else "**missed**"


def ms(v):
    return f"{v:.2f} ms"


def latency_cells(s):
    """The p50, p95, p99 and min cells of a report row, from a summary()."""
    return f"{ms(s['p50'])} | {ms(s['p95'])} | {ms(s['p99'])} | {ms(s['min'])}"


def cpu_row(label, p):
    """A row of the CPU each party spent per proxied request, and what it means for the 0.8× goal."""
    cpu, b = p["proxied"]["cpu_us"], p["budget"]
    parts = ", ".join(f"{name} {cpu[name]:.0f}" for name in ("wrk", "node", "proxy"))
    return (f"| {label} (µs; wrk, the node server, the proxy) | {parts} | | | | all {b['cores']} cores busy: "
            f"≤ {b['ceiling_rps']:,.0f} req/s | 0.8× leaves the proxy {b['proxy_allowance_us']:.0f} µs | |")


def nginx_comparison_rows(p):
    """The preview proxy beside nginx in the same run (issue 28): CPU per request and throughput, both on shared cores."""
    n = p["nginx"]
    cpu = p["proxied"]["cpu_us"]["proxy"] / n["proxied"]["cpu_us"]["proxy"]
    rate = p["proxied"]["rps"] / n["proxied"]["rps"]
    return [f"| preview proxy's CPU per request against nginx's | {p['proxied']['cpu_us']['proxy']:.1f} µs against "
            f"{n['proxied']['cpu_us']['proxy']:.1f} µs ({cpu:.2f}×) | | | | | ≤ 1.2×: {verdict(cpu <= 1.2)} | |",
            f"| preview proxy's throughput against nginx's, shared cores | {p['proxied']['rps']:,.0f} against "
            f"{n['proxied']['rps']:,.0f} req/s ({rate:.2f}×) | | | | | ≥ 0.9×: {verdict(rate >= 0.9)} | |"]


def websocket_row(w):
    rows = [(f"| WebSocket preview, {w['connections']} sockets × {w['window']} messages in flight, {w['size']} B echoes | "
             f"{w['proxied']['rate']:,.0f} msgs/s, proxy {w['proxied']['cpu_us']['proxy']:.1f} µs/echo | | | | "
             f"direct: {w['direct']['rate']:,.0f} msgs/s ({w['ratio']:.2f}×) | ≥ 0.9×: {verdict(w['ratio'] >= 0.9)} | |")]
    n = w.get("nginx")
    if n:
        rows.append(f"| reference: the same echo server and client on the host, through nginx | {n['proxied']['rate']:,.0f} msgs/s, "
                    f"nginx {n['proxied']['cpu_us']['proxy']:.1f} µs/echo | | | | direct on the host: {n['direct']['rate']:,.0f} msgs/s "
                    f"({n['ratio']:.2f}×) | | |")
    return "\n".join(rows)


def report(results, mode, command):
    rows = []
    c = results.get("cold_start")
    if c:
        create, wake, warm = summary(c["create_echo"]), summary(c["wake_echo"]), summary(c["warm_exec"])
        bwrap, spawn = summary(c["floor_bwrap"]), summary(c["floor_spawn"])
        # Issue 28: a cold start costs at most 1.5× a warm exec of the same run (p50 against p50).
        goal = lambda s: f"≤ 1.5× warm exec: {verdict(s['p50'] <= 1.5 * warm['p50'])}"
        rows.append(f"| cold start: create + first `echo hello` over HTTP ({c.get('blank_workspaces', 0)} blank workspaces ready) | {latency_cells(create)} | warm exec: {ms(warm['p50'])} "
                    f"(**{create['p50'] / warm['p50']:.2f}×**); bwrap `true`: {ms(bwrap['p50'])} ({create['p50'] / bwrap['p50']:.1f}×) "
                    f"| {goal(create)}; p99 ≤ 25 ms: {verdict(create['p99'] <= 25)} | {ANCHORS['create']} |")
        if c.get("create_echo_back_to_back"):
            busy = summary(c["create_echo_back_to_back"])
            rows.append(f"| cold start back to back: {len(c['create_echo_back_to_back'])} creates + first `echo hello` in a row "
                        f"({c.get('blank_workspaces', 0)} blank workspaces kept, each made again while the next creates run) "
                        f"| {latency_cells(busy)} | warm exec: {ms(warm['p50'])} (**{busy['p50'] / warm['p50']:.2f}×**) "
                        f"| {goal(busy)}; p99 ≤ 25 ms: {verdict(busy['p99'] <= 25)} | {ANCHORS['create']} |")
        if c.get("wake_recent_echo"):
            recent = summary(c["wake_recent_echo"])
            rows.append(f"| wake of a workspace just put to sleep (its sandbox parked) + `echo hello` | {latency_cells(recent)} "
                        f"| warm exec: {ms(warm['p50'])} (**{recent['p50'] / warm['p50']:.2f}×**) "
                        f"| {goal(recent)}; p99 ≤ 25 ms: {verdict(recent['p99'] <= 25)} | {ANCHORS['wake']} |")
        rows.append(f"| boot of a sleeping workspace + `echo hello` ({len(c['wake_echo'])} asleep at once, woken oldest first) "
                    f"| {latency_cells(wake)} | warm exec: {ms(warm['p50'])} "
                    f"(**{wake['p50'] / warm['p50']:.2f}×**); bwrap `true`: {ms(bwrap['p50'])} ({wake['p50'] / bwrap['p50']:.1f}×) "
                    f"| {goal(wake)}; p99 ≤ 25 ms: {verdict(wake['p99'] <= 25)} | {ANCHORS['wake']} |")
        rows.append(f"| warm exec of `true` over HTTP | {latency_cells(warm)} | posix_spawn `true`: {ms(spawn['p50'])} "
                    f"| ≤ floor + 1.5 ms: {verdict(warm['p50'] <= spawn['p50'] + 1.5)} | |")
        rows.append(f"| floor: bare bwrap `true` | {latency_cells(bwrap)} | | | |")
        rows.append(f"| floor: posix_spawn `true` | {latency_cells(spawn)} | | | |")
    i = results.get("images")
    if i:
        plain, image = summary(i["plain_create_echo"]), summary(i["image_create_echo"])
        ratio = image["p50"] / plain["p50"]
        rows.append(f"| create + first exec of a workspace from a {i['image_bytes'] / 1e6:.0f} MB image | {latency_cells(image)} "
                    f"| plain workspace: {ms(plain['p50'])} ({ratio:.2f}×) | ≤ 1.5× plain: {verdict(ratio <= 1.5)} | |")
        rows.append(f"| create + first exec of a plain workspace (same run) | {latency_cells(plain)} | | | |")
        rows.append(f"| freezing that image (`POST /v1/images`) | {ms(i['freeze_ms'])} | | | | | |")
    m = results.get("memory")
    if m:
        if m["awake_rss_mb"] is not None:
            rows.append(f"| memory per awake idle workspace (slope over {m['staircase']}) | RSS {m['awake_rss_mb']:.2f} MB, "
                        f"PSS {m['awake_pss_mb']:.2f} MB | | | | | ≤ 3 MB: {verdict(m['awake_rss_mb'] <= 3)} | {ANCHORS['memory']} |")
        rows.append(f"| {m['at_once']} workspaces awake at once | {m['at_once_awake']} awake, {m['at_once_answered']} answered; "
                    f"{m['at_once_processes']} processes; RSS {m['at_once_rss_mb']:.0f} MB, PSS {m['at_once_pss_mb']:.0f} MB | | | | "
                    f"| 1,000 awake: {verdict(m['at_once'] >= 1000 and m['at_once_answered'] == m['at_once'])} | |")
        rows.append(f"| memory per sleeping workspace ({m['at_once']} asleep) | {m['asleep_rss_per_workspace_kb']:.1f} KB "
                    f"(server RSS {m['baseline_rss_mb']:.0f} → {m['asleep_rss_mb']:.0f} MB) | | | | | | |")
    g = results.get("registered")
    if g:
        get = summary(g["get_ms"])
        rows.append(f"| server RSS per sleeping workspace, {g['registered']:,} registered ({g['woken']:,} of them woken and slept) "
                    f"| {g['rss_per_registered_kb']:.2f} KB (RSS {g['base_rss_mb']:.0f} → {g['slept_rss_mb']:.0f} MB; "
                    f"{g['rss_per_woken_then_slept_kb']:.1f} KB more per woken-then-slept one) | | | | "
                    f"| ≤ 4 KB: {verdict(g['rss_per_registered_kb'] <= 4)} | |")
        rows.append(f"| `GET /v1/workspaces/{{key}}` at {g['registered']:,} registered | {latency_cells(get)} "
                    f"| | p99 ≤ 5 ms: {verdict(get['p99'] <= 5)} | |")
        rows.append(f"| registering {g['registered']:,} workspaces (PUT, 4 connections) | {g['register_per_s']:,.0f} PUT/s "
                    f"| | | | | | |")
        if g.get("list_page_ms"):
            pages = summary(g["list_page_ms"])
            rows.append(f"| `GET /v1/workspaces` page of 100, the whole list of {g['listed']:,} ({pages['n']:,} pages) "
                        f"| {latency_cells(pages)} | "
                        f"| p99 ≤ 5 ms: {verdict(pages['p99'] <= 5)} | |")
    a = results.get("awake")
    if a:
        ok = a["errors"] == 0 and a["running"] == a["count"] and a["sample_shells_running"] == a["sample"]
        rows.append(f"| {a['count']:,} workspaces awake at once, each with one idle shell | {a['running']:,} running "
                    f"({a['errors']} errors, {a.get('refused', 0):,} refused with 503 past the server's --max-awake), "
                    f"{a['processes']:,} processes; made in {a['made_s']:.0f} s ({a['made_per_s']:.0f}/s) "
                    f"| | | | | {a['count']:,} awake: {verdict(ok and a['count'] >= 10_000)} | |")
        rows.append(f"| memory of those {a['count']:,}: the server, every sandbox process | server RSS {a['server_rss_mb']:,.0f} MB "
                    f"({a['server_rss_per_workspace_kb']:.0f} KB per workspace); all: RSS {a['total_rss_mb']:,.0f} MB, "
                    f"PSS {a['total_pss_mb']:,.0f} MB ({a['pss_per_workspace_kb']:.0f} KB PSS per workspace); "
                    f"{a['machine_available_mb']:,.0f} MB still available | | | | | | |")
        k = a.get("machine_per_workspace_kb")
        if k:
            rows.append(f"| the machine's memory per awake workspace (/proc/meminfo) | MemAvailable −{-k['MemAvailable']:,.0f} KB: "
                        f"slab {k['Slab']:,.0f} KB (unreclaimable {k['SUnreclaim']:,.0f}), kernel stacks {k['KernelStack']:,.0f} KB, "
                        f"page tables {k['PageTables']:,.0f} KB, per-CPU {k['Percpu']:,.0f} KB, shmem {k['Shmem']:,.0f} KB | | | | | | |")
        e = a["exec_ms"]
        rows.append(f"| exec in one of them while all {a['count']:,} are awake ({a['sample']} random ones; each shell running: "
                    f"{a['sample_shells_running']}) | {latency_cells(e)} | | | |")
    t = results.get("throughput")
    if t:
        e, sp, bw = t["ms"], t["spawn"], t["bwrap"]
        rows.append(f"| exec throughput: {t['workspaces']} workspaces × `true` back to back, all at once ({t['execs']:,} execs, "
                    f"{t['errors']} errors) | {t['per_s']:,.0f} execs/s; p50 {latency_cells(e)} "
                    f"| {t['workspaces']} threads × posix_spawn `true`: {sp['per_s']:,.0f}/s, p99 {ms(sp['ms']['p99'])} "
                    f"({t['per_s'] / sp['per_s']:.2f}×); × bare bwrap: {bw['per_s']:,.0f}/s, p99 {ms(bw['ms']['p99'])} "
                    f"({t['per_s'] / bw['per_s']:.2f}×) | no errors: {verdict(t['errors'] == 0)} | |")
    j = results.get("cron")
    if j:
        per_s = lambda cpu: cpu / j["idle_seconds"] * 1000
        rows.append(f"| server CPU while {j['jobs']:,} cron jobs wait for a slot, none due ({j['idle_seconds']} s) "
                    f"| {per_s(j['scheduled_cpu_s']):.2f} ms/s | | | | no job: {per_s(j['baseline_cpu_s']):.2f} ms/s "
                    f"| no more than with none (+≤ 1 ms/s): {verdict(per_s(j['scheduled_cpu_s']) <= per_s(j['baseline_cpu_s']) + 1)} | |")
        if j["late_ms"]:
            late = summary(j["late_ms"])
            rows.append(f"| cron run start after its slot (a job every second, {len(j['late_ms'])} runs) | {latency_cells(late)} "
                        f"| scheduling {j['jobs']:,} jobs: "
                        f"{j['create_per_s']:,.0f} jobs/s | | |")
    x = results.get("metrics")
    if x:
        t = summary(x["scrape_ms"])
        counted = x["sleeping"] == x["registered"]
        rows.append(f"| `GET /metrics` with {x['registered']:,} registered workspaces ({x['scrape_bytes'] / 1024:.0f} KiB of text; "
                    f"{x['sleeping']:,.0f} counted sleeping) | {latency_cells(t)} | "
                    f"| p99 ≤ 50 ms and every workspace counted: {verdict(t['p99'] <= 50 and counted)} | |")
    t = results.get("toolkits")
    if t:
        call, true = summary(t["sequential_ms"]), summary(t["spawn_true_ms"])
        rows.append(f"| tool call from a command in a workspace to an http handler on loopback and back ({t['calls']} calls) "
                    f"| {latency_cells(call)} | spawning `true` there: "
                    f"{ms(true['p50'])} | p50 ≤ 5 ms: {verdict(call['p50'] <= 5)} | |")
        rows.append(f"| {t['calls']} tool calls at once | {t['concurrent_wall_ms']:.0f} ms wall, {t['concurrent_ok']} ok | | | | | "
                    f"all ok: {verdict(t['concurrent_ok'] == t['calls'])} | |")
        if "mcp_call_ms" in t:
            mcp = summary(t["mcp_call_ms"])
            rows.append(f"| the same tool as an MCP tool: `tools/call` to `/.agentbox/bin/tool mcp` and back ({t['calls']} calls; "
                        f"start + initialize + tools/list {t['mcp_start_ms']:.1f} ms) | {latency_cells(mcp)} "
                        f"| the command: {ms(call['p50'])} | p50 ≤ 5 ms: {verdict(mcp['p50'] <= 5)} | |")
    d = results.get("desktop")
    if d:
        start, shot, half = summary(d["start_ms"]), summary(d["screenshot_ms"]), summary(d["half_ms"])
        rows.append(f"| desktop: display start (Xvfb + Openbox in an awake workspace, `POST /desktop`, {start['n']}×) | {latency_cells(start)} "
                    f"| | ≤ 500 ms: {verdict(start['p50'] <= 500)} | |")
        rows.append(f"| desktop: 1280×800 screenshot, PNG over HTTP ({shot['n']}×, {d['png_bytes'] / 1e3:.0f} KB) | {latency_cells(shot)} "
                    f"| scale 0.5: {ms(half['p50'])} | p50 ≤ 50 ms: {verdict(shot['p50'] <= 50)} | |")
    g = results.get("gateway")
    if g:
        direct, through = summary(g["direct_ms"]), summary(g["gateway_ms"])
        added = through["p50"] - direct["p50"]
        rows.append(f"| LLM gateway: a non-streaming Messages call through it ({g['calls']} calls, keep-alive, from the host) "
                    f"| {latency_cells(through)} | "
                    f"straight to the upstream: {ms(direct['p50'])} (added {ms(added)}) | added ≤ 1 ms p50: {verdict(added <= 1)} | |")
        rows.append(f"| LLM gateway: {g['streams']} streamed calls at once ({g['stream_bytes']:,} bytes each) | "
                    f"{g['streams_whole']} whole in {g['streams_wall_ms']:.0f} ms | | | | | none lost: "
                    f"{verdict(g['streams_whole'] == g['streams'])} | |")
    s = results.get("sessions")
    if s:
        rows.append(f"| session ingest: mock agent in a sandbox → ACP → SQLite → subscribers, {s['events']:,} events "
                    f"| {s['events_per_s']:,.0f} events/s | | | | | ≥ 50k/s: {verdict(s['events_per_s'] >= 50000)} | |")
        for name, samples in s["pages"].items():
            p = summary(samples)
            rows.append(f"| page of 100 events over HTTP, {name} of a {s['transcript']:,}-event transcript | {latency_cells(p)} "
                        f"| | ≤ 5 ms: {verdict(p['p50'] <= 5)} | |")
    f = results.get("fan_out")
    if f:
        t = f["finished_ms"]
        rows.append(f"| {f['subscribers']:,} SSE subscribers × {f['events']:,} events: time until each has all "
                    f"| {latency_cells(t)} | "
                    f"{f['deliveries_per_s']:,.0f} deliveries/s | every event to every subscriber: "
                    f"{verdict(f['complete'] == f['subscribers'])} ({f['complete']} of {f['subscribers']}) | |")
    p = results.get("previews")
    if p:
        rows.append(f"| preview proxy, wrk -c{p['connections']} {p['seconds']} s (node http server) | {p['proxied']['rps']:,.0f} req/s, "
                    f"p50 {ms(p['proxied']['p50'])} | | p99 {ms(p['proxied']['p99'])} | | direct: {p['direct']['rps']:,.0f} req/s, "
                    f"p50 {ms(p['direct']['p50'])} ({p['ratio']:.2f}×, +{ms(p['added_p50_ms'])} at p50) | ≥ 0.8×: {verdict(p['ratio'] >= 0.8)} | |")
        rows.append(f"| preview latency added, unloaded (wrk -c1) | +{ms(p['unloaded_added_p50_ms'])} at p50 | | | "
                    f"| direct p50 {ms(p['unloaded_direct_p50_ms'])} | | |")
        rows.append(cpu_row("CPU per proxied request", p))
        if p.get("own_core"):
            o = p["own_core"]
            rows.append(f"| preview proxy on a core of its own (wrk and node on CPU 0, the server on CPU 1) | "
                        f"{o['proxied']['rps']:,.0f} req/s, p50 {ms(o['proxied']['p50'])} | | p99 {ms(o['proxied']['p99'])} | | "
                        f"direct, same CPU 0: {o['direct']['rps']:,.0f} req/s ({o['ratio']:.2f}×) | ≥ 0.8×: {verdict(o['ratio'] >= 0.8)} | |")
        if p.get("nginx"):
            n = p["nginx"]
            rows.append(f"| reference: nginx as a keep-alive reverse proxy of the same server on the host | "
                        f"{n['proxied']['rps']:,.0f} req/s, +{ms(n['unloaded_added_p50_ms'])} unloaded | | | | "
                        f"direct: {n['direct']['rps']:,.0f} req/s ({n['ratio']:.2f}×) | | |")
            rows.append(cpu_row("CPU per request through nginx", n))
            if n.get("own_core"):
                o = n["own_core"]
                rows.append(f"| reference: nginx on a core of its own | {o['proxied']['rps']:,.0f} req/s | | | | "
                            f"direct, same CPU 0: {o['direct']['rps']:,.0f} req/s ({o['ratio']:.2f}×) | | |")
            rows.extend(nginx_comparison_rows(p))
        if p.get("websocket"):
            rows.append(websocket_row(p["websocket"]))
    f = results.get("files")
    if f:
        rows.append(f"| {f['megabytes']} MB upload (PUT fs/file, fsync'd), {f['filesystem']} | {f['upload_mb_s']:,.0f} MB/s | | | "
                    f"| cp + sync: {f['cp_mb_s']:,.0f} MB/s ({f['upload_ratio']:.2f}×) | ≥ 0.5×: {verdict(f['upload_ratio'] >= 0.5)} | |")
        rows.append(f"| {f['megabytes']} MB download (GET fs/file) | {f['download_mb_s']:,.0f} MB/s | | | "
                    f"| cp + sync: {f['cp_mb_s']:,.0f} MB/s ({f['download_ratio']:.2f}×) | ≥ 0.5×: {verdict(f['download_ratio'] >= 0.5)} | |")
        rows.append(f"| tar upload of {f['small_files']:,} small files | {f['tar_files_s']:,.0f} files/s | | | "
                    f"| tar -x + sync: {f['untar_files_s']:,.0f} files/s | | |")
        rows.append(f"| snapshot / fork of a workspace with {f['snapshot_contents']} | {f['snapshot_ms']:,.0f} ms / "
                    f"{f['fork_ms']:,.0f} ms | | | | | | |")
    n = results.get("neighbours")
    if n:
        load, idle, loaded, c = n["latency_ms"], n["probe_idle_ms"], n["probe_loaded_ms"], n["cores"]
        if load:
            rows.append(f"| noisy neighbours: {n['workspaces']:,} workspaces' `echo` exec loops over {n['connections']} keep-alive "
                        f"connections for {n['seconds']:.0f} s, per exec | {latency_cells(load)} | max {ms(load['max'])}; "
                        f"{n['requests_per_s']:,.0f} execs/s ({n['requests']:,} in all) | no errors: {verdict(n['errors'] == 0)} ({n['errors']}) | |")
        if loaded:
            rows.append(f"| an idle neighbour's `echo` exec every 100 ms, during that load ({loaded['n']} samples) | {latency_cells(loaded)} "
                        f"| without the load: p50 {ms(idle['p50'])}, p99 {ms(idle['p99'])}, max {ms(idle['max'])} "
                        f"({loaded['p50'] / idle['p50']:.1f}× at p50); loaded max {ms(loaded['max'])} | | |")
        rows.append(f"| CPU during that load (cores of {os.cpu_count()}; load average before: {n['load_average_before']:.1f}) | "
                    f"server {c['server']:.2f}, sandboxes {c['sandboxes']:.2f}, load generator {c['load']:.2f}, probe "
                    f"{c['probe']:.2f}, rest of the machine {c['others']:.2f} | | | | server {n['server_cpu_us_per_exec']:,.0f} µs "
                    f"per exec | | |")
    machine = results["machine"]
    lines = [
        f"**Run:** {results['date']} · `{command}` ({mode}) · {machine}",
        "",
        "| measure | p50 / result | p95 | p99 | min | floor (same run) | goal | anchor (published) |",
        "|---|---|---|---|---|---|---|---|",
    ] + rows
    return "\n".join(lines) + "\n"


def plot(results, path):
    c = results.get("cold_start")
    if not c:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(9, 5), dpi=110)
    for name, key in [("create + first echo (HTTP)", "create_echo"), ("boot of a sleeping workspace + echo", "wake_echo"),
                      ("wake just after its sleep (parked) + echo", "wake_recent_echo"),
                      ("floor: bare bwrap true", "floor_bwrap"), ("warm exec of true (HTTP)", "warm_exec")]:
        if not c.get(key):
            continue
        samples = sorted(c[key])
        axis.step(samples, [(i + 1) / len(samples) for i in range(len(samples))], where="post",
                  label=f"{name}: p50 {statistics.median(samples):.2f} ms")
    for x, label in [(37, "agentOS create+echo 37 ms"), (4.8, "agentOS 4.8 ms")]:
        axis.axvline(x, color="grey", linestyle=":", linewidth=1)
        axis.text(x, 0.5, label, rotation=90, fontsize=8, color="grey", ha="right", va="center",
                  transform=axis.get_xaxis_transform())
    axis.set_xscale("log")
    axis.set_ylim(0, 1.02)
    axis.set_xlabel("latency (ms, log scale)")
    axis.set_ylabel("fraction of runs ≤ x")
    axis.set_title(f"AgentBox cold start, {len(c['create_echo'])} runs each ({results['date']})")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    return True


def machine_description():
    cores = os.cpu_count()
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.split("\n")[0] if shutil.which("swift") else ""
    version = re.search(r"Swift version ([\d.]+)", swift)
    return (f"{cores} cores {platform.machine()}, {memory_gb:.0f} GiB, Linux {platform.release()}"
            f"{', Swift ' + version.group(1) if version else ''}")


# ------------------------------------------------------------------------------------------------------------- main

FULL = {"cold": 200, "staircase": 100, "at_once": 1000, "events": 1_000_000, "page_reads": 200, "subscribers": 1000,
        "fan_events": 1000, "preview_seconds": 10, "file_mb": 100, "small_files": 10_000, "iterations": 5,
        "neighbours": 200, "neighbour_seconds": 60, "neighbour_connections": 16, "registered": 100_000, "woken": 1000,
        "images": 100, "image_mb": 300, "cron_jobs": 10_000, "cron_idle_seconds": 30, "cron_fires": 10,
        "metrics_registered": 10_000, "scrapes": 50, "tool_calls": 100, "llm_calls": 500, "llm_streams": 200,
        "desktop_starts": 20, "screenshots": 200, "awake": 10_000, "awake_sample": 200, "throughput_workspaces": 200,
        "throughput_seconds": 30}
SMOKE = {"cold": 3, "staircase": 2, "at_once": 3, "events": 1000, "page_reads": 3, "subscribers": 5,
         "fan_events": 20, "preview_seconds": 1, "file_mb": 4, "small_files": 100, "iterations": 1,
         "neighbours": 3, "neighbour_seconds": 1, "neighbour_connections": 2, "registered": 200, "woken": 20,
         "images": 2, "image_mb": 4, "cron_jobs": 200, "cron_idle_seconds": 2, "cron_fires": 2,
         "metrics_registered": 200, "scrapes": 5, "tool_calls": 5, "llm_calls": 10, "llm_streams": 5,
         "desktop_starts": 1, "screenshots": 2, "awake": 4, "awake_sample": 2, "throughput_workspaces": 3,
         "throughput_seconds": 1}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the agentbox binary (release build)")
    parser.add_argument("--out", required=True, help="where results.json, summary.md and cold-start.png go")
    parser.add_argument("--smoke", action="store_true", help="one iteration of each, small sizes (CI)")
    parser.add_argument("--only", default="cold,memory,sessions,fanout,previews,files,neighbours,registered,images,cron,metrics,toolkits,gateway,desktop,throughput,awake",
                        help="comma-separated subset of: cold, memory, sessions, fanout, previews, files, neighbours, registered, images, cron, metrics, toolkits, gateway, desktop, throughput, awake")
    parser.add_argument("--set", action="append", default=[], metavar="SIZE=N",
                        help="override one size, e.g. --set subscribers=200 (names: " + ", ".join(FULL) + ")")
    parser.add_argument("--command", default="bash bench/run.sh", help="the command to name in the report")
    parser.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                        help="an extra argument of agentbox serve, e.g. --serve-arg=--disk-pool=none (repeatable)")
    arguments = parser.parse_args()
    sizes = dict(SMOKE if arguments.smoke else FULL)
    for item in arguments.set:
        name, _, value = item.partition("=")
        if name not in sizes or not value.isdigit():
            parser.error(f"--set {item}: expected one of {', '.join(sizes)} = a number")
        sizes[name] = int(value)
    only = set(arguments.only.split(","))
    os.makedirs(arguments.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="agentbox-bench.", dir="/var/tmp")
    os.chmod(work, 0o755)  # the workspaces' own uids must be able to enter the data directory
    server = Server(arguments.bin, work, arguments.serve_arg)
    results = {"date": datetime.date.today().isoformat(), "machine": machine_description(), "sizes": sizes}
    try:
        api = API(server.endpoint)
        log(f"server {server.endpoint} (pid {server.pid}), data in {work}")
        if "cold" in only:
            log(f"cold start × {sizes['cold']}")
            results["cold_start"] = cold_start(api, sizes["cold"])
        if "memory" in only:
            log(f"memory: staircase of {sizes['staircase']}, {sizes['at_once']} at once")
            results["memory"] = memory(api, server.pid, sizes["staircase"], sizes["at_once"])
        if "sessions" in only:
            log(f"sessions: a turn of {sizes['events']} events, pages")
            results["sessions"] = sessions(api, sizes["events"], sizes["page_reads"])
        if "fanout" in only:
            log(f"fan-out: {sizes['subscribers']} SSE subscribers × {sizes['fan_events']} events")
            results["fan_out"] = fan_out(api, sizes["subscribers"], sizes["fan_events"])
        if "previews" in only:
            log(f"previews: wrk {sizes['preview_seconds']} s direct and proxied")
            results["previews"] = previews(api, server.pid, work, sizes["preview_seconds"], 16)
        if "files" in only:
            log(f"files: {sizes['file_mb']} MB × {sizes['iterations']}, {sizes['small_files']} small files")
            results["files"] = files(api, work, sizes["file_mb"], sizes["small_files"], sizes["iterations"])
        if "neighbours" in only:
            log(f"neighbours: {sizes['neighbours']} workspaces' exec loops for {sizes['neighbour_seconds']} s over "
                f"{sizes['neighbour_connections']} connections, and an idle neighbour's exec every 100 ms")
            results["neighbours"] = neighbours(api, server.pid, sizes["neighbours"], sizes["neighbour_seconds"], sizes["neighbour_connections"])
        if "images" in only:
            log(f"images: a {sizes['image_mb']} MB image; {sizes['images']} workspaces from it and {sizes['images']} plain")
            results["images"] = images(api, sizes["images"], sizes["image_mb"])
        if "cron" in only:
            log(f"cron: {sizes['cron_jobs']:,} jobs scheduled, none due, {sizes['cron_idle_seconds']} s idle; {sizes['cron_fires']} runs of a job every second")
            results["cron"] = cron(api, server.pid, sizes["cron_jobs"], sizes["cron_idle_seconds"], sizes["cron_fires"])
        if "toolkits" in only:
            log(f"toolkits: {sizes['tool_calls']} tool calls from a workspace command to an http handler, then as many at once")
            results["toolkits"] = toolkit_calls(api, sizes["tool_calls"])
        if "registered" in only:
            log(f"registered: {sizes['registered']:,} workspaces, {sizes['woken']:,} woken and slept")
            results["registered"] = registered(arguments.bin, work, sizes["registered"], sizes["woken"])
        if "metrics" in only:
            log(f"metrics: {sizes['scrapes']} scrapes of GET /metrics with {sizes['metrics_registered']:,} workspaces registered")
            results["metrics"] = metrics_scrapes(arguments.bin, work, sizes["metrics_registered"], sizes["scrapes"])
        if "desktop" in only:
            log(f"desktop: {sizes['desktop_starts']} display starts, {sizes['screenshots']} screenshots at 1280x800")
            results["desktop"] = desktop(api, sizes["desktop_starts"], sizes["screenshots"])
        if "gateway" in only:
            log(f"gateway: {sizes['llm_calls']} model calls through the LLM gateway and straight to the upstream, then {sizes['llm_streams']} streams at once")
            results["gateway"] = llm_gateway(arguments.bin, work, sizes["llm_calls"], sizes["llm_streams"])
        if "throughput" in only:
            log(f"throughput: {sizes['throughput_workspaces']} workspaces' exec loops at once for {sizes['throughput_seconds']} s, "
                f"then as many threads of bare spawns")
            results["throughput"] = exec_throughput(api, work, sizes["throughput_workspaces"], sizes["throughput_seconds"])
        if "awake" in only:
            log(f"awake: {sizes['awake']:,} workspaces awake at once, each with a shell")
            results["awake"] = awake_many(api, server.pid, sizes["awake"], 4, sizes["awake_sample"])
    finally:
        server.stop()
    if server.process.returncode not in (0, -15):
        raise SystemExit(f"the server exited with {server.process.returncode}; see {work}/server.log")
    shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(arguments.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    text = report(results, "smoke" if arguments.smoke else "full", arguments.command)
    with open(os.path.join(arguments.out, "summary.md"), "w") as f:
        f.write(text)
    if plot(results, os.path.join(arguments.out, "cold-start.png")):
        log(f"plot: {os.path.join(arguments.out, 'cold-start.png')}")
    print(text)
    for part in ("throughput", "awake"):
        if results.get(part, {}).get("errors"):
            raise SystemExit(f"{part}: {results[part]['errors']} errors, e.g. {results[part]['error_samples'][:3]}")
    if results.get("neighbours", {}).get("errors"):
        raise SystemExit(f"neighbours: {results['neighbours']['errors']} execs failed, e.g. {results['neighbours']['error_samples'][:3]}")


if __name__ == "__main__":
    main()
